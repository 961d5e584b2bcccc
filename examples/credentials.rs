//! Obtain temporary credentials in-process, as a Rust program using the library.
//!
//! ```sh
//! cargo run --example credentials -- CERT KEY TRUST_ANCHOR_ARN PROFILE_ARN ROLE_ARN [ENDPOINT CA_BUNDLE]
//! ```
//! With the `aws-sdk` feature the same provider plugs into `aws_config::defaults(...)
//! .credentials_provider(provider)`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!(
            "usage: credentials CERT KEY TRUST_ANCHOR_ARN PROFILE_ARN ROLE_ARN [ENDPOINT CA_BUNDLE]"
        );
        std::process::exit(2);
    }
    let mut builder = iamra::RolesAnywhereProvider::builder()
        .certificate(&args[0])
        .private_key(&args[1])
        .trust_anchor_arn(&args[2])
        .profile_arn(&args[3])
        .role_arn(&args[4]);
    if let (Some(endpoint), Some(ca)) = (args.get(5), args.get(6)) {
        builder = builder.endpoint(endpoint).ca_bundle(ca);
    }
    let provider = match builder.build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}", iamra::error::chain(&e));
            std::process::exit(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(provider.credentials()) {
        // The secret key and session token stay in memory; print only what is not secret.
        Ok(c) => println!(
            "access key {} expires {}",
            c.access_key_id(),
            c.expiration()
        ),
        Err(e) => {
            eprintln!("error: {}", iamra::error::chain(&e));
            std::process::exit(1);
        }
    }
}
