//! Verification primitives: the caller's number, keyed hashes of knowledge
//! factors, the customers file and the signed handoff token.

pub mod caller_id;
pub mod customers;
pub mod keyed_hash;
pub mod otp;
pub mod token;

pub use caller_id::{
    determine_caller_number, mask_number, to_e164, CallerNumber, PhoneNumberError,
};
pub use customers::{load_customers, normalise_contract_number, Customer, CustomerFileOptions};
pub use keyed_hash::{HashPurpose, KeyedHash, KeyedHashError, KeyedHasher};
pub use token::{handle_for, handle_for_jti, random_jti, Claims, TokenError, TokenSigner};
