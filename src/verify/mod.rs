//! Verification primitives: the caller's number, keyed hashes of knowledge
//! factors, the customers file, the entry formats of the factors, the
//! verification policy and the signed handoff token.

pub mod caller_id;
pub mod customers;
pub mod factors;
pub mod keyed_hash;
pub mod otp;
pub mod policy;
pub mod token;

pub use caller_id::{
    determine_caller_number, mask_number, to_e164, CallerNumber, PhoneNumberError,
};
pub use customers::{
    load_customers, load_customers_with_settings, normalise_contract_number, Customer,
    CustomerFileOptions, CustomerFileSettings,
};
pub use factors::{normalise_entry, CheckDigit, Date, EntryError, FactorSettings};
pub use keyed_hash::{HashPurpose, KeyedHash, KeyedHashError, KeyedHasher};
pub use policy::{
    amr, explain_request_type, highest_level_reached, next_factor, Factor, FactorOutcome,
    FactorOutcomes, Level, NextStep, Policy, PolicyError, RequestType, Rule, ServiceLine,
};
pub use token::{handle_for, handle_for_jti, random_jti, Claims, TokenError, TokenSigner};
