use super::*;

const CUSTOMER: &str = "C-1001";

fn config() -> FlowConfig {
    FlowConfig {
        max_attempts: 3,
        contract_min_digits: 6,
        contract_max_digits: 10,
        first_digit_timeout: Duration::from_secs(8),
        inter_digit_timeout: Duration::from_secs(4),
    }
}

fn drain(flow: &mut CallFlow) -> Vec<Action> {
    std::iter::from_fn(|| flow.poll_action()).collect()
}

fn type_digits(flow: &mut CallFlow, digits: &str, now: Instant) {
    for digit in digits.chars() {
        flow.handle_input(Input::Digit(digit), now);
    }
}

/// Starts a call and plays the whole welcome, leaving the flow waiting
/// for the first digit.
fn answered_and_welcomed(now: Instant) -> CallFlow {
    let mut flow = CallFlow::new(config());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);
    flow.handle_input(Input::PromptsFinished, now);
    drain(&mut flow);
    flow
}

fn checked_digits(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::CheckContract(digits) => Some(digits.expose().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn answer_plays_welcome_in_order() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config());

    flow.handle_input(Input::Answered, now);

    assert_eq!(flow.state(), State::Welcome);
    assert_eq!(
        drain(&mut flow),
        vec![
            Action::Play(PromptId::Welcome),
            Action::Play(PromptId::WhyWeAsk),
            Action::Play(PromptId::WhatWeNeverAsk),
            Action::Play(PromptId::EnterContractNumber),
        ]
    );
    assert_eq!(flow.poll_timeout(), None);
}

#[test]
fn second_answer_is_ignored() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);

    flow.handle_input(Input::Answered, now);

    assert!(drain(&mut flow).is_empty());
}

#[test]
fn first_digit_timer_starts_after_prompts() {
    let now = Instant::now();
    let flow = answered_and_welcomed(now);

    assert_eq!(flow.state(), State::Collecting);
    assert_eq!(flow.armed_timer(), Some(FlowTimer::FirstDigit));
    assert_eq!(flow.poll_timeout(), Some(now + Duration::from_secs(8)));
}

#[test]
fn digits_then_hash_request_lookup() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    type_digits(&mut flow, "12345678#", now);

    let actions = drain(&mut flow);
    assert_eq!(checked_digits(&actions), vec!["12345678".to_owned()]);
    assert_eq!(flow.state(), State::Checking);
    assert_eq!(flow.poll_timeout(), None);
}

#[test]
fn type_ahead_during_welcome_barges_in() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);

    type_digits(&mut flow, "123", now);
    let actions = drain(&mut flow);

    assert_eq!(actions, vec![Action::StopPrompts]);
    assert_eq!(flow.state(), State::Collecting);
    assert_eq!(flow.armed_timer(), Some(FlowTimer::InterDigit));

    type_digits(&mut flow, "45678#", now);
    assert_eq!(
        checked_digits(&drain(&mut flow)),
        vec!["12345678".to_owned()]
    );
}

#[test]
fn prompt_end_after_barge_in_keeps_collecting() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);
    type_digits(&mut flow, "12", now);
    drain(&mut flow);

    flow.handle_input(Input::PromptsFinished, now);

    assert_eq!(flow.state(), State::Collecting);
    assert_eq!(flow.armed_timer(), Some(FlowTimer::InterDigit));
}

#[test]
fn match_verifies_basic_after_closing_prompt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(
        Input::ContractChecked(ContractCheck::Match {
            customer_id: CUSTOMER.to_owned(),
            caller_id_match: true,
        }),
        now,
    );

    assert_eq!(flow.state(), State::Closing);
    assert_eq!(
        drain(&mut flow),
        vec![
            Action::StopPrompts,
            Action::Play(PromptId::ThankYouConnecting)
        ]
    );

    flow.handle_input(Input::PromptsFinished, now);

    assert_eq!(flow.state(), State::Transferring);
    assert_eq!(
        drain(&mut flow),
        vec![Action::Transfer(Verification::Basic {
            customer_id: CUSTOMER.to_owned(),
            caller_id_match: true,
        })]
    );
}

#[test]
fn no_match_costs_one_attempt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(Input::ContractChecked(ContractCheck::NoMatch), now);

    assert_eq!(flow.failed_attempts(), 1);
    assert_eq!(flow.state(), State::Prompting);
    assert_eq!(
        drain(&mut flow),
        vec![
            Action::Play(PromptId::NotRecognised),
            Action::Play(PromptId::EnterContractNumber),
        ]
    );
}

#[test]
fn three_failures_transfer_unverified() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    for _ in 0..3 {
        type_digits(&mut flow, "99999999#", now);
        drain(&mut flow);
        flow.handle_input(Input::ContractChecked(ContractCheck::NoMatch), now);
        flow.handle_input(Input::PromptsFinished, now);
    }

    let actions = drain(&mut flow);
    assert_eq!(flow.failed_attempts(), 3);
    assert_eq!(flow.state(), State::Transferring);
    assert!(actions.contains(&Action::Play(PromptId::CouldNotVerify)));
    assert_eq!(
        actions.last(),
        Some(&Action::Transfer(Verification::Unverified {
            reason: UnverifiedReason::AttemptsExhausted
        }))
    );
}

#[test]
fn too_short_entry_rejected_without_lookup() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    type_digits(&mut flow, "123#", now);

    let actions = drain(&mut flow);
    assert!(checked_digits(&actions).is_empty());
    assert_eq!(flow.failed_attempts(), 1);
    assert_eq!(
        actions,
        vec![
            Action::Play(PromptId::NotRecognised),
            Action::Play(PromptId::EnterContractNumber),
        ]
    );
}

#[test]
fn letter_keys_make_entry_invalid() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    type_digits(&mut flow, "1234A678#", now);

    assert!(checked_digits(&drain(&mut flow)).is_empty());
    assert_eq!(flow.failed_attempts(), 1);
}

#[test]
fn maximum_length_ends_entry_without_hash() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    type_digits(&mut flow, "1234567890", now);

    assert_eq!(
        checked_digits(&drain(&mut flow)),
        vec!["1234567890".to_owned()]
    );
    assert_eq!(flow.state(), State::Checking);
}

#[test]
fn star_clears_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    type_digits(&mut flow, "999*12345678#", now);

    assert_eq!(
        checked_digits(&drain(&mut flow)),
        vec!["12345678".to_owned()]
    );
}

#[test]
fn first_digit_timeout_costs_attempt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    flow.handle_timeout(now + Duration::from_secs(7));
    assert!(drain(&mut flow).is_empty(), "fired before its deadline");

    flow.handle_timeout(now + Duration::from_secs(8));

    assert_eq!(flow.failed_attempts(), 1);
    assert_eq!(
        drain(&mut flow),
        vec![
            Action::Play(PromptId::NoInput),
            Action::Play(PromptId::EnterContractNumber),
        ]
    );
    assert_eq!(flow.poll_timeout(), None);
}

#[test]
fn inter_digit_timeout_submits_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "1234567", now);
    let later = now + Duration::from_secs(2);
    type_digits(&mut flow, "8", later);

    flow.handle_timeout(later + Duration::from_secs(3));
    assert!(drain(&mut flow).is_empty(), "timer restarted by each digit");

    flow.handle_timeout(later + Duration::from_secs(4));

    assert_eq!(
        checked_digits(&drain(&mut flow)),
        vec!["12345678".to_owned()]
    );
}

#[test]
fn silent_caller_ends_unverified() {
    let mut now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    for _ in 0..3 {
        now += Duration::from_secs(8);
        flow.handle_timeout(now);
        drain(&mut flow);
        flow.handle_input(Input::PromptsFinished, now);
    }

    assert_eq!(flow.state(), State::Transferring);
    assert_eq!(flow.failed_attempts(), 3);
}

#[test]
fn type_ahead_during_lookup_starts_next_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "99999999#", now);
    drain(&mut flow);

    type_digits(&mut flow, "1234", now);
    assert!(drain(&mut flow).is_empty(), "digits during lookup are held");
    flow.handle_input(Input::ContractChecked(ContractCheck::NoMatch), now);
    drain(&mut flow);
    type_digits(&mut flow, "5678#", now);

    assert_eq!(
        checked_digits(&drain(&mut flow)),
        vec!["12345678".to_owned()]
    );
}

#[test]
fn store_unavailable_fails_closed() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(Input::ContractChecked(ContractCheck::StoreUnavailable), now);
    assert!(drain(&mut flow).contains(&Action::Play(PromptId::CouldNotVerify)));
    flow.handle_input(Input::PromptsFinished, now);

    assert_eq!(
        drain(&mut flow),
        vec![Action::Transfer(Verification::Unverified {
            reason: UnverifiedReason::StoreUnavailable
        })]
    );
}

#[test]
fn stale_lookup_result_is_ignored() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);

    flow.handle_input(
        Input::ContractChecked(ContractCheck::Match {
            customer_id: CUSTOMER.to_owned(),
            caller_id_match: false,
        }),
        now,
    );

    assert_eq!(flow.state(), State::Collecting);
    assert!(drain(&mut flow).is_empty());
}

#[test]
fn digits_after_verification_are_ignored() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(
        Input::ContractChecked(ContractCheck::Match {
            customer_id: CUSTOMER.to_owned(),
            caller_id_match: false,
        }),
        now,
    );
    drain(&mut flow);

    type_digits(&mut flow, "1#", now);

    assert!(drain(&mut flow).is_empty());
    assert_eq!(flow.state(), State::Closing);
}

/// Brings a verified call up to the point where the REFER is out.
fn transferring(now: Instant) -> CallFlow {
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(
        Input::ContractChecked(ContractCheck::Match {
            customer_id: CUSTOMER.to_owned(),
            caller_id_match: false,
        }),
        now,
    );
    flow.handle_input(Input::PromptsFinished, now);
    drain(&mut flow);
    flow
}

#[test]
fn transfer_success_hangs_up() {
    let now = Instant::now();
    let mut flow = transferring(now);

    flow.handle_input(Input::TransferAccepted, now);
    assert!(drain(&mut flow).is_empty());
    flow.handle_input(Input::TransferSucceeded, now);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
}

#[test]
fn transfer_failure_apologises_then_hangs_up() {
    let now = Instant::now();
    let mut flow = transferring(now);

    flow.handle_input(Input::TransferFailed, now);

    assert_eq!(flow.state(), State::Apologising);
    assert_eq!(
        drain(&mut flow),
        vec![
            Action::Play(PromptId::TransferFailed),
            Action::Play(PromptId::Goodbye),
        ]
    );

    flow.handle_input(Input::PromptsFinished, now);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
}

#[test]
fn caller_hang_up_stops_everything() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(now);
    type_digits(&mut flow, "1234", now);

    flow.handle_input(Input::CallerHungUp, now);

    assert_eq!(flow.state(), State::Ended);
    assert_eq!(flow.poll_timeout(), None);
    flow.handle_input(Input::PromptsFinished, now);
    type_digits(&mut flow, "5678#", now);
    assert!(checked_digits(&drain(&mut flow)).is_empty());
}

#[test]
fn contract_digits_debug_hides_digits() {
    let digits = ContractDigits("12345678".to_owned());

    let printed = format!("{digits:?}");

    assert!(!printed.contains("1234"), "{printed}");
    assert!(printed.contains("8 digits"), "{printed}");
}
