//! Whole calls against the real binary, placed with sipp over UDP on
//! loopback. Each test starts its own service on free ports; the
//! proportional-verification tests use the menu of request types, a
//! loopback SMS gateway and a private Redis.
//!
//! sipp sends the digits from pcap files through a raw socket, so these
//! tests need root (as in CI); `scripts/test` installs sipp when missing.

mod support;

use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::sms_server::{Reply, SmsServer};
use support::{
    call_with_sipp, embedded_header, introspect, last_rtp_port, refer_to, send_rfc4733_digits,
    set_menu, Keypad, Service,
};

/// The default menu: key 1 information, 2 contract change, 3 financial change.
const FULL_MENU: [&str; 3] = ["information", "contract_change", "financial_change"];

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
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        set_menu(config, &FULL_MENU)
    });

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
    assert_eq!(claims["request_type"], "information", "{claims}");
    assert_eq!(claims["policy_version"], "2026-12-01", "{claims}");

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
        call_until_transfer(service_ref, "0201234567", Keypad::Generated("34567890#"))
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
    assert_eq!(genuine["caller_id_match"], false, "{genuine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_change_asks_date_of_birth() {
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        set_menu(config, &FULL_MENU)
    });

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(
            service_ref,
            "0612345601",
            Keypad::Generated("223456789#01021980"),
        )
    });

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "substantial", "{claims}");
    assert_eq!(claims["request_type"], "contract_change", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["kba"]), "{claims}");
    assert!(service
        .log()
        .contains("factor=\"date_of_birth\" outcome=\"passed\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_birth_date_reaches_basic_only() {
    let service = Service::start_with(support::CUSTOMERS_CSV, |config| {
        set_menu(config, &FULL_MENU);
        // Only the date of birth may complete the level, so three wrong
        // dates leave the call at the level the contract number reached.
        config["levels"]["substantial"]["any_of"] =
            toml_edit::value(toml_edit::Array::from_iter(["date_of_birth"]));
    });

    let service_ref = &service;
    let (token, _) = tokio::task::block_in_place(|| {
        call_until_transfer(
            service_ref,
            "0612345601",
            Keypad::Generated("223456789#010219810101198201011983"),
        )
    });

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "basic", "{claims}");
    assert_eq!(claims["request_type"], "contract_change", "{claims}");
    assert_eq!(claims["sub"], "C-1001", "{claims}");
}

/// Waits until the loopback gateway received a message and returns the
/// six-digit code in its text.
async fn code_from_gateway(gateway: &SmsServer) -> (String, serde_json::Value) {
    let started = Instant::now();
    loop {
        if let Some(request) = gateway.requests().first() {
            let body = request.json();
            let text = body["text"]
                .as_str()
                .expect("the message has a text")
                .to_owned();
            let code: String = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)
                .expect("the text holds a six-digit code")
                .to_owned();
            return (code, body);
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no SMS reached the loopback gateway"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn financial_change_needs_sms_code() {
    let redis = RedisServer::standalone();
    let gateway = SmsServer::start(Reply::json(200, serde_json::json!({"id": "m-1"}))).await;
    let gateway_url = gateway.url("/send");
    let redis_url = redis.url().to_owned();
    let prefix = format!("ivr-test-{}:", std::process::id());
    let prefix_for_config = prefix.clone();
    let service = Service::start_with(support::CUSTOMERS_CSV, move |config| {
        set_menu(config, &FULL_MENU);
        config["store"] = toml_edit::table();
        config["store"]["kind"] = toml_edit::value("redis");
        config["store"]["redis_url"] = toml_edit::value(redis_url);
        config["store"]["key_prefix"] = toml_edit::value(prefix_for_config);
        let gateways = config["sms"]["gateways"]
            .as_array_of_tables_mut()
            .expect("[[sms.gateways]]");
        gateways.clear();
        let mut gateway = toml_edit::Table::new();
        gateway["kind"] = toml_edit::value("http_json");
        gateway["url"] = toml_edit::value(gateway_url);
        gateway["body_template"] =
            toml_edit::value(r#"{"to": "{{to}}", "from": "{{from}}", "text": "{{text}}"}"#);
        gateways.push(gateway);
    });

    let sip_service = &service;
    let caller = std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            call_until_transfer(sip_service, "0612345601", Keypad::Generated("323456789#"))
        });
        let runtime = tokio::runtime::Handle::current();
        let (code, body) =
            tokio::task::block_in_place(|| runtime.block_on(code_from_gateway(&gateway)));
        assert_eq!(
            body["to"], "+31612345601",
            "the code goes to the registered mobile"
        );
        let port = last_rtp_port(&sip_service.log()).expect("the service logs the call's RTP port");
        std::thread::sleep(Duration::from_secs(2));
        send_rfc4733_digits(format!("127.0.0.1:{port}").parse().unwrap(), &code);
        (call.join().expect("sipp thread"), code)
    });
    let ((token, _), code) = caller;

    let claims = introspect(&service, &token).await;
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["acr"], "high", "{claims}");
    assert_eq!(claims["request_type"], "financial_change", "{claims}");
    let amr = claims["amr"].as_array().expect("amr is a list").clone();
    for method in ["kba", "sms", "otp", "mfa"] {
        assert!(
            amr.contains(&serde_json::json!(method)),
            "amr lacks {method}: {claims}"
        );
    }

    let log = service.log();
    assert!(!log.contains(&code), "one-time code in the log");

    // Nothing the caller proved is in Redis in clear.
    let dump = support::redis::dump_text(redis.url(), &prefix)
        .await
        .join("\n");
    assert!(!dump.is_empty(), "the store holds keys");
    // Digits-only secrets are matched as whole tokens, because a run of
    // digits may occur by chance inside a hex-encoded keyed hash.
    let tokens: Vec<&str> = dump
        .split(|c: char| !c.is_ascii_alphanumeric() && c != ':')
        .collect();
    for secret in ["23456789", "01021980", "1234:12", "4321", code.as_str()] {
        assert!(!tokens.contains(&secret), "{secret} in clear in Redis");
    }
    assert!(!dump.contains("1234:12"), "postcode in clear in Redis");
}
