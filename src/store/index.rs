//! Checks a customer list and indexes it by keyed hash, for every store.

use std::collections::{HashMap, HashSet};

use super::{CustomerRecord, StoreError};
use crate::verify::customers::Customer;
use crate::verify::keyed_hash::KeyedHash;

/// Customers indexed by keyed hash, as one replacement writes them.
#[derive(Debug, Default)]
pub(crate) struct CustomerIndex {
    /// Contract number hash to its customer.
    pub(crate) by_contract: HashMap<KeyedHash, CustomerRecord>,
    /// Phone number hash to the ids of the customers that registered it, in
    /// list order.
    pub(crate) by_phone: HashMap<KeyedHash, Vec<String>>,
}

/// Indexes `customers`. Fails on the first repeated customer id or contract
/// number shared by two customers, so a store can keep its old set.
pub(crate) fn build_index(customers: Vec<Customer>) -> Result<CustomerIndex, StoreError> {
    let mut index = CustomerIndex::default();
    let mut seen_ids = HashSet::new();

    for customer in customers {
        if !seen_ids.insert(customer.customer_id.clone()) {
            return Err(StoreError::DuplicateCustomerId {
                customer_id: customer.customer_id,
            });
        }

        let record = CustomerRecord {
            customer_id: customer.customer_id.clone(),
            mobile_e164: customer.mobile_e164.clone(),
            date_of_birth: customer.date_of_birth,
            postcode: customer.postcode,
            iban_last_digits: customer.iban_last_digits,
        };
        for contract in &customer.contracts {
            if let Some(existing) = index.by_contract.get(contract) {
                if existing.customer_id != customer.customer_id {
                    return Err(StoreError::DuplicateContract {
                        first: existing.customer_id.clone(),
                        second: customer.customer_id,
                    });
                }
            }
            index.by_contract.insert(*contract, record.clone());
        }

        for phone in &customer.phones {
            let ids = index.by_phone.entry(*phone).or_default();
            if !ids.contains(&customer.customer_id) {
                ids.push(customer.customer_id.clone());
            }
        }
    }

    Ok(index)
}
