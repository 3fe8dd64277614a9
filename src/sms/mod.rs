pub mod config;
pub use config::{GatewayConfig, SmsConfig};
