use super::*;

use Factor::*;

fn rule(all_of: &[Factor], any_of: &[Factor]) -> Rule {
    Rule {
        all_of: all_of.to_vec(),
        any_of: any_of.to_vec(),
    }
}

fn level(name: &str, all_of: &[Factor], any_of: &[Factor]) -> Level {
    Level {
        name: name.to_string(),
        rule: rule(all_of, any_of),
    }
}

fn request_type(name: &str, level: &str) -> RequestType {
    RequestType {
        name: name.to_string(),
        level: level.to_string(),
        agent_queue_uri: format!("sip:{name}@192.0.2.20"),
    }
}

fn line(name: &str, numbers: &[&str], menu: &[&str]) -> ServiceLine {
    ServiceLine {
        name: name.to_string(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        language: Language::Nl,
        menu: menu.iter().map(|m| m.to_string()).collect(),
    }
}

/// Builds the levels and request types of `config/default.toml`.
fn default_policy() -> Policy {
    Policy::new(
        "2026-12-01".to_string(),
        vec![
            level("basic", &[ContractNumber], &[]),
            level(
                "substantial",
                &[ContractNumber],
                &[DateOfBirth, Postcode, IbanLastDigits],
            ),
            level("high", &[ContractNumber, SmsOtp], &[]),
        ],
        vec![
            request_type("information", "basic"),
            request_type("contract_change", "substantial"),
            request_type("financial_change", "high"),
        ],
        vec![
            line("english", &["+31201234567"], &["information"]),
            line(
                "default",
                &[],
                &["information", "contract_change", "financial_change"],
            ),
        ],
    )
    .unwrap()
}

fn everything(_: Factor) -> bool {
    true
}

#[test]
fn factor_names_round_trip() {
    for factor in Factor::ALL {
        assert_eq!(Factor::from_name(factor.name()), Some(factor));
        assert_eq!(factor.to_string(), factor.name());
    }
    assert_eq!(Factor::from_name("iban"), None);
    assert_eq!(Factor::from_name("Contract_Number"), None);
}

#[test]
fn next_factor_asks_all_of_in_order() {
    let rule = rule(&[ContractNumber, SmsOtp], &[]);
    let mut outcomes = FactorOutcomes::new();
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Ask(ContractNumber)
    );

    outcomes.pass(ContractNumber, "matched");
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Ask(SmsOtp)
    );

    outcomes.pass(SmsOtp, "valid code");
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Satisfied
    );
}

#[test]
fn next_factor_failed_all_of_is_unsatisfiable() {
    let rule = rule(&[ContractNumber, SmsOtp], &[]);
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.fail(SmsOtp, "3 wrong entries");
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Unsatisfiable
    );
}

#[test]
fn next_factor_unavailable_all_of_is_unsatisfiable() {
    let rule = rule(&[ContractNumber, SmsOtp], &[]);
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    let no_mobile = |factor: Factor| factor != SmsOtp;
    assert_eq!(
        next_factor(&rule, &outcomes, &no_mobile),
        NextStep::Unsatisfiable
    );
}

#[test]
fn next_factor_tries_any_of_alternatives() {
    let rule = rule(&[ContractNumber], &[DateOfBirth, Postcode, IbanLastDigits]);
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");

    // No date of birth on file: the first alternative is skipped.
    let no_birth_date = |factor: Factor| factor != DateOfBirth;
    assert_eq!(
        next_factor(&rule, &outcomes, &no_birth_date),
        NextStep::Ask(Postcode)
    );

    outcomes.fail(Postcode, "wrong entries");
    assert_eq!(
        next_factor(&rule, &outcomes, &no_birth_date),
        NextStep::Ask(IbanLastDigits)
    );

    outcomes.pass(IbanLastDigits, "matched");
    assert_eq!(
        next_factor(&rule, &outcomes, &no_birth_date),
        NextStep::Satisfied
    );
}

#[test]
fn next_factor_any_of_exhausted() {
    let rule = rule(&[ContractNumber], &[DateOfBirth, Postcode]);
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.fail(DateOfBirth, "wrong");
    outcomes.fail(Postcode, "wrong");
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Unsatisfiable
    );
}

#[test]
fn next_factor_any_of_only() {
    let rule = rule(&[], &[DateOfBirth, Postcode]);
    let outcomes = FactorOutcomes::new();
    assert_eq!(
        next_factor(&rule, &outcomes, &everything),
        NextStep::Ask(DateOfBirth)
    );
}

#[test]
fn next_factor_never_asks_caller_id() {
    // As an alternative, an open or failed caller ID match is skipped.
    let alternative = rule(&[ContractNumber], &[CallerIdMatch, DateOfBirth]);
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    assert_eq!(
        next_factor(&alternative, &outcomes, &everything),
        NextStep::Ask(DateOfBirth)
    );
    outcomes.pass(CallerIdMatch, "registered number");
    assert_eq!(
        next_factor(&alternative, &outcomes, &everything),
        NextStep::Satisfied
    );

    // As a requirement, a caller ID match that did not pass cannot be asked.
    let required = rule(&[CallerIdMatch, ContractNumber], &[]);
    let mut outcomes = FactorOutcomes::new();
    assert_eq!(
        next_factor(&required, &outcomes, &everything),
        NextStep::Unsatisfiable
    );
    outcomes.pass(CallerIdMatch, "registered number");
    assert_eq!(
        next_factor(&required, &outcomes, &everything),
        NextStep::Ask(ContractNumber)
    );
}

#[test]
fn outcomes_keep_reasons_and_order() {
    let mut outcomes = FactorOutcomes::new();
    outcomes.fail(CallerIdMatch, "number not registered");
    outcomes.fail(ContractNumber, "not found");
    outcomes.pass(ContractNumber, "matched on attempt 2");

    let recorded: Vec<(Factor, bool, &str)> = outcomes
        .iter()
        .map(|(factor, outcome)| (factor, outcome.passed, outcome.reason.as_str()))
        .collect();
    assert_eq!(
        recorded,
        vec![
            (CallerIdMatch, false, "number not registered"),
            (ContractNumber, true, "matched on attempt 2"),
        ]
    );
    assert!(outcomes.passed(ContractNumber));
    assert!(outcomes.failed(CallerIdMatch));
    assert!(!outcomes.passed(SmsOtp));
    assert!(!outcomes.failed(SmsOtp));
    assert_eq!(outcomes.get(SmsOtp), None);
}

#[test]
fn highest_level_follows_config_order() {
    let policy = default_policy();
    let mut outcomes = FactorOutcomes::new();
    assert_eq!(highest_level_reached(&policy, &outcomes), None);

    outcomes.pass(ContractNumber, "matched");
    assert_eq!(
        highest_level_reached(&policy, &outcomes).as_deref(),
        Some("basic")
    );

    outcomes.pass(Postcode, "matched");
    assert_eq!(
        highest_level_reached(&policy, &outcomes).as_deref(),
        Some("substantial")
    );

    outcomes.pass(SmsOtp, "valid code");
    assert_eq!(
        highest_level_reached(&policy, &outcomes).as_deref(),
        Some("high")
    );
}

#[test]
fn highest_level_skips_unmet_middle() {
    let policy = default_policy();
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.pass(SmsOtp, "valid code");
    assert_eq!(
        highest_level_reached(&policy, &outcomes).as_deref(),
        Some("high")
    );
}

#[test]
fn amr_knowledge_only() {
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.pass(DateOfBirth, "matched");
    outcomes.fail(SmsOtp, "expired");
    let rule = rule(&[ContractNumber], &[DateOfBirth]);
    assert_eq!(amr(&outcomes, &rule), vec!["kba"]);
}

#[test]
fn amr_knowledge_and_otp_is_mfa() {
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.pass(SmsOtp, "valid code");
    let rule = rule(&[ContractNumber, SmsOtp], &[]);
    assert_eq!(amr(&outcomes, &rule), vec!["kba", "mfa", "otp", "sms"]);
}

#[test]
fn amr_tel_only_when_rule_uses_it() {
    let mut outcomes = FactorOutcomes::new();
    outcomes.pass(ContractNumber, "matched");
    outcomes.pass(CallerIdMatch, "registered number");

    let without = rule(&[ContractNumber], &[]);
    assert_eq!(amr(&outcomes, &without), vec!["kba"]);

    let with = rule(&[ContractNumber], &[CallerIdMatch, DateOfBirth]);
    assert_eq!(amr(&outcomes, &with), vec!["kba", "tel"]);

    outcomes.fail(CallerIdMatch, "number not registered");
    assert_eq!(amr(&outcomes, &with), vec!["kba"]);
}

#[test]
fn amr_empty_without_passes() {
    let mut outcomes = FactorOutcomes::new();
    outcomes.fail(ContractNumber, "not found");
    assert!(amr(&outcomes, &rule(&[ContractNumber], &[])).is_empty());
}

#[test]
fn service_line_lookup() {
    let policy = default_policy();
    assert_eq!(
        policy.service_line_for(Some("+31201234567")).name,
        "english"
    );
    assert_eq!(
        policy.service_line_for(Some("+31881234567")).name,
        "default"
    );
    assert_eq!(policy.service_line_for(None).name, "default");

    let names: Vec<&str> = policy.service_lines().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["english", "default"]);
}

#[test]
fn menu_keys_select_request_types() {
    let policy = default_policy();
    let default = policy.service_line_for(None);
    assert_eq!(default.request_type_for_key(1), Some("information"));
    assert_eq!(default.request_type_for_key(3), Some("financial_change"));
    assert_eq!(default.request_type_for_key(4), None);
    assert_eq!(default.request_type_for_key(0), None);
}

#[test]
fn request_type_and_level_lookup() {
    let policy = default_policy();
    assert_eq!(policy.version(), "2026-12-01");
    let level = policy.level_for("contract_change").unwrap();
    assert_eq!(level.name, "substantial");
    assert_eq!(
        level.rule.any_of,
        vec![DateOfBirth, Postcode, IbanLastDigits]
    );
    assert_eq!(
        policy
            .request_type("financial_change")
            .unwrap()
            .agent_queue_uri,
        "sip:financial_change@192.0.2.20"
    );
    assert!(policy.request_type("payment").is_none());
    assert!(policy.level_for("payment").is_none());
}

#[test]
fn policy_needs_one_fallback_line() {
    let levels = vec![level("basic", &[ContractNumber], &[])];
    let types = vec![request_type("information", "basic")];

    let none = Policy::new(
        "v".to_string(),
        levels.clone(),
        types.clone(),
        vec![line("a", &["+31201234567"], &["information"])],
    );
    assert_eq!(none, Err(PolicyError::NoFallbackLine));

    let two = Policy::new(
        "v".to_string(),
        levels,
        types,
        vec![
            line("a", &[], &["information"]),
            line("b", &[], &["information"]),
        ],
    );
    assert_eq!(
        two,
        Err(PolicyError::SeveralFallbackLines {
            first: "a".to_string(),
            second: "b".to_string()
        })
    );
}

#[test]
fn policy_checks_references() {
    let unknown_level = Policy::new(
        "v".to_string(),
        vec![level("basic", &[ContractNumber], &[])],
        vec![request_type("information", "medium")],
        vec![line("default", &[], &["information"])],
    );
    assert!(matches!(
        unknown_level,
        Err(PolicyError::UnknownLevel { .. })
    ));

    let unknown_type = Policy::new(
        "v".to_string(),
        vec![level("basic", &[ContractNumber], &[])],
        vec![request_type("information", "basic")],
        vec![line("default", &[], &["payment"])],
    );
    assert!(matches!(
        unknown_type,
        Err(PolicyError::UnknownRequestType { .. })
    ));
}

#[test]
fn caller_id_alone_detected() {
    assert!(rule(&[CallerIdMatch], &[]).satisfied_by_caller_id_alone());
    assert!(rule(&[], &[CallerIdMatch, ContractNumber]).satisfied_by_caller_id_alone());
    assert!(!rule(&[ContractNumber], &[CallerIdMatch]).satisfied_by_caller_id_alone());
    assert!(!rule(&[CallerIdMatch, ContractNumber], &[]).satisfied_by_caller_id_alone());
}
