//! Output sinks: what iamra prints or serves. Each module documents its wire contract.

pub mod certificate_data;
pub mod process;
pub mod sign_string;
