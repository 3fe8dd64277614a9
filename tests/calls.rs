//! Whole calls against the real binary, placed with sipp over UDP on
//! loopback. Each test starts its own service on free ports.
//!
//! sipp sends the digits from pcap files through a raw socket, so these
//! tests need root (as in CI); `scripts/test` installs sipp when missing.

mod support;

use support::{call_with_sipp, embedded_header, introspect, refer_to, Keypad, Service};

/// Calls, expects a REFER, and returns the token and handle it carried.
fn call_until_transfer(service: &Service, caller: &str, keypad: Keypad<'_>) -> (String, String) {
    let run = call_with_sipp(service, caller, keypad);
    assert!(
        run.succeeded,
        "sipp call failed\n--- sipp ---\n{}\n--- messages ---\n{}\n--- service log ---\n{}",
        run.output,
        run.messages,
        service.log()
    );

    let refer_to = refer_to(&run.messages).expect("the REFER carries Refer-To");
    assert!(
        refer_to.contains("sip:agents@127.0.0.1:5999"),
        "Refer-To names the agent queue: {refer_to}"
    );

    let token = embedded_header(&refer_to, "X-Verification-Token")
        .expect("Refer-To embeds X-Verification-Token");
    let user_to_user =
        embedded_header(&refer_to, "User-to-User").expect("Refer-To embeds User-to-User");
    (token, user_to_user)
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_caller_verified_basic() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let caller = "0612345601";
    let service_ref = &service;
    let (token, user_to_user) = tokio::task::block_in_place(|| {
        call_until_transfer(service_ref, caller, Keypad::ShippedCaptures)
    });

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["sub"], "C-1001", "{claims}");
    assert_eq!(claims["acr"], "basic", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["kba"]), "{claims}");
    assert_eq!(claims["caller_id_match"], true, "{claims}");
    assert_eq!(claims["iss"], "ivr-verify-test", "{claims}");

    let (handle, encoding) = user_to_user
        .split_once(';')
        .expect("User-to-User has an encoding parameter");
    assert_eq!(encoding, "encoding=hex");
    assert!(
        handle.len() <= 128 && handle.bytes().all(|b| b.is_ascii_hexdigit()),
        "User-to-User handle is short hex: {handle}"
    );

    let again = introspect(&service, &token).await;
    assert_eq!(again["active"], false, "a token id is single use: {again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_contract_three_times_unverified() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(
            service_ref,
            "0612345601",
            Keypad::Generated("11111111#22222222#33333333#"),
        )
    });

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "unverified", "{claims}");
    assert!(
        claims.get("sub").is_none(),
        "no subject when unverified: {claims}"
    );
    assert_eq!(claims["amr"], serde_json::json!([]), "{claims}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unregistered_number_verified_without_match() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(service_ref, "0301234567", Keypad::Generated("12345678#"))
    });

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["sub"], "C-1001", "{claims}");
    assert_eq!(claims["acr"], "basic", "{claims}");
    assert_eq!(claims["caller_id_match"], false, "{claims}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_holds_no_digits_or_token() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(service_ref, "0612345601", Keypad::Generated("87654321#"))
    });
    let claims = introspect(&service, &token).await;
    assert_eq!(claims["acr"], "basic", "{claims}");

    let log = service.log();
    assert!(
        log.contains("call state changed"),
        "state changes are logged:\n{log}"
    );
    assert!(
        !log.contains("87654321"),
        "contract number in the log:\n{log}"
    );
    assert!(!log.contains(&token), "token in the log");
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(!log.contains(signature), "token signature in the log");
    assert!(
        !log.contains("612345601"),
        "unmasked phone number in the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_token_inactive() {
    let service = Service::start(support::CUSTOMERS_CSV);

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(service_ref, "0612345602", Keypad::Generated("23456789#"))
    });

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 3, "a JWS compact token has three parts");
    let payload = parts[1].clone();
    let flipped = if payload.ends_with('A') { 'B' } else { 'A' };
    parts[1] = format!("{}{}", &payload[..payload.len() - 1], flipped);
    let tampered = parts.join(".");

    let claims = introspect(&service, &tampered).await;
    assert_eq!(claims, serde_json::json!({"active": false}));

    let genuine = introspect(&service, &token).await;
    assert_eq!(genuine["active"], true, "{genuine}");
    assert_eq!(genuine["sub"], "C-1002", "{genuine}");
}
