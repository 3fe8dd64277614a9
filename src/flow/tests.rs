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

fn rule(all_of: &[Factor], any_of: &[Factor]) -> Rule {
    Rule {
        all_of: all_of.to_vec(),
        any_of: any_of.to_vec(),
    }
}

fn basic() -> Rule {
    rule(&[Factor::ContractNumber], &[])
}

fn substantial() -> Rule {
    rule(
        &[Factor::ContractNumber],
        &[
            Factor::DateOfBirth,
            Factor::Postcode,
            Factor::IbanLastDigits,
        ],
    )
}

fn high() -> Rule {
    rule(&[Factor::ContractNumber, Factor::SmsOtp], &[])
}

fn default_plan() -> CallPlan {
    CallPlan {
        menu: vec![
            ("information".to_owned(), basic()),
            ("contract_change".to_owned(), substantial()),
            ("financial_change".to_owned(), high()),
        ],
        iban_last_digits: 4,
    }
}

fn single_plan(request: Rule) -> CallPlan {
    CallPlan {
        menu: vec![("information".to_owned(), request)],
        iban_last_digits: 4,
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

fn fixed(id: PromptId) -> Action {
    Action::Play(Prompt::Fixed(id))
}

fn named(name: &str) -> Action {
    Action::Play(Prompt::Named(name.to_owned()))
}

/// Starts a call and plays the whole welcome, leaving the flow waiting for
/// the first key.
fn answered_and_welcomed(plan: CallPlan, now: Instant) -> CallFlow {
    let mut flow = CallFlow::new(config(), plan);
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);
    flow.handle_input(Input::PromptsFinished, now);
    drain(&mut flow);
    flow
}

/// Returns the digits of every entry check in `actions`, per factor.
fn checks(actions: &[Action]) -> Vec<(Factor, String)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::CheckEntry { factor, digits } => Some((*factor, digits.expose().to_owned())),
            _ => None,
        })
        .collect()
}

fn matched(available: &[Factor]) -> Input {
    Input::EntryChecked(EntryCheck::ContractMatched {
        customer_id: CUSTOMER.to_owned(),
        caller_id_match: true,
        available: available.to_vec(),
    })
}

/// Returns the transfer among `actions`, if any.
fn transfer_in(actions: &[Action]) -> Option<Verification> {
    actions.iter().find_map(|action| match action {
        Action::Transfer(verification) => Some(verification.clone()),
        _ => None,
    })
}

#[test]
fn answer_plays_welcome_then_menu() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config(), default_plan());

    flow.handle_input(Input::Answered, now);

    assert_eq!(flow.state(), State::Welcome);
    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::Welcome),
            fixed(PromptId::WhyWeAsk),
            fixed(PromptId::WhatWeNeverAsk),
            fixed(PromptId::ChooseRequestType),
            named("request_type_information"),
            named("press_1"),
            named("request_type_contract_change"),
            named("press_2"),
            named("request_type_financial_change"),
            named("press_3"),
        ]
    );
    assert_eq!(flow.poll_timeout(), None);
}

#[test]
fn single_request_type_skips_menu() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config(), single_plan(basic()));

    flow.handle_input(Input::Answered, now);

    let actions = drain(&mut flow);
    assert_eq!(actions.last(), Some(&fixed(PromptId::EnterContractNumber)));
    assert!(!actions.contains(&fixed(PromptId::ChooseRequestType)));
}

#[test]
fn second_answer_is_ignored() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config(), default_plan());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);

    flow.handle_input(Input::Answered, now);

    assert!(drain(&mut flow).is_empty());
}

#[test]
fn first_digit_timer_starts_after_prompts() {
    let now = Instant::now();
    let flow = answered_and_welcomed(default_plan(), now);

    assert_eq!(flow.state(), State::Collecting(Step::Menu));
    assert_eq!(flow.armed_timer(), Some(FlowTimer::FirstDigit));
    assert_eq!(flow.poll_timeout(), Some(now + Duration::from_secs(8)));
}

#[test]
fn menu_key_selects_request_type() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(default_plan(), now);

    type_digits(&mut flow, "2", now);

    assert_eq!(drain(&mut flow), vec![fixed(PromptId::EnterContractNumber)]);
    assert_eq!(
        flow.state(),
        State::Prompting(Step::Factor(Factor::ContractNumber))
    );
}

#[test]
fn invalid_menu_key_repeats_menu() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(default_plan(), now);

    type_digits(&mut flow, "7", now);

    let actions = drain(&mut flow);
    assert_eq!(actions.first(), Some(&fixed(PromptId::InvalidChoice)));
    assert!(actions.contains(&fixed(PromptId::ChooseRequestType)));
    assert_eq!(flow.state(), State::Prompting(Step::Menu));
}

#[test]
fn three_invalid_menu_keys_end_unverified() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(default_plan(), now);

    let mut actions = Vec::new();
    for key in ["0", "#", "9"] {
        type_digits(&mut flow, key, now);
        actions = drain(&mut flow);
    }

    assert_eq!(flow.state(), State::Transferring);
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert_eq!(verification.stopped, Some(StopReason::NoRequestType));
    assert_eq!(verification.request_type, None);
}

#[test]
fn menu_key_during_welcome_barges_in() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config(), default_plan());
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);

    type_digits(&mut flow, "1", now);

    assert_eq!(
        drain(&mut flow),
        vec![Action::StopPrompts, fixed(PromptId::EnterContractNumber)]
    );
}

#[test]
fn type_ahead_during_welcome_is_kept() {
    let now = Instant::now();
    let mut flow = CallFlow::new(config(), single_plan(basic()));
    flow.handle_input(Input::Answered, now);
    drain(&mut flow);

    type_digits(&mut flow, "123", now);
    assert_eq!(drain(&mut flow), vec![Action::StopPrompts]);
    assert_eq!(flow.armed_timer(), Some(FlowTimer::InterDigit));

    type_digits(&mut flow, "45678#", now);

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "12345678".to_owned())]
    );
}

#[test]
fn basic_request_verified_by_contract() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(matched(&[]), now);

    assert_eq!(flow.state(), State::Transferring);
    let actions = drain(&mut flow);
    assert_eq!(
        actions.get(..2),
        Some(&[Action::StopPrompts, fixed(PromptId::ThankYouConnecting)][..]),
        "the closing prompt starts"
    );
    assert_eq!(actions.len(), 3, "the REFER goes out with it: {actions:?}");
    assert_eq!(flow.armed_timer(), Some(FlowTimer::TransferOutcome));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert_eq!(verification.customer_id.as_deref(), Some(CUSTOMER));
    assert_eq!(verification.request_type.as_deref(), Some("information"));
    assert!(verification.caller_id_match);
    assert!(verification.outcomes.passed(Factor::ContractNumber));
    assert_eq!(verification.stopped, None);
    assert_eq!(flow.state(), State::Transferring);
}

#[test]
fn substantial_asks_date_of_birth() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(substantial()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(matched(&[Factor::DateOfBirth, Factor::Postcode]), now);

    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::ExtraCheckNeeded),
            fixed(PromptId::EnterDateOfBirth)
        ]
    );

    type_digits(&mut flow, "01021980", now);
    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::DateOfBirth, "01021980".to_owned())],
        "eight digits end the entry without #"
    );

    flow.handle_input(Input::EntryChecked(EntryCheck::Passed), now);
    let actions = drain(&mut flow);
    assert!(actions.contains(&fixed(PromptId::ThankYouConnecting)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert!(verification.outcomes.passed(Factor::DateOfBirth));
}

#[test]
fn failed_factor_falls_back_to_next() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(substantial()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[Factor::DateOfBirth, Factor::Postcode]), now);
    drain(&mut flow);

    for _ in 0..3 {
        type_digits(&mut flow, "01021980", now);
        drain(&mut flow);
        flow.handle_input(Input::EntryChecked(EntryCheck::Failed), now);
    }

    let actions = drain(&mut flow);
    assert_eq!(flow.failed_attempts(Factor::DateOfBirth), 3);
    assert!(
        actions.contains(&fixed(PromptId::EnterPostcode)),
        "{actions:?}"
    );
    assert_eq!(
        flow.state(),
        State::Prompting(Step::Factor(Factor::Postcode))
    );
}

#[test]
fn unmet_rule_transfers_with_reached_outcomes() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(substantial()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[Factor::IbanLastDigits]), now);
    drain(&mut flow);

    for _ in 0..3 {
        type_digits(&mut flow, "1234", now);
        drain(&mut flow);
        flow.handle_input(Input::EntryChecked(EntryCheck::Failed), now);
    }

    let actions = drain(&mut flow);
    assert!(actions.contains(&fixed(PromptId::CouldNotVerify)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert!(verification.outcomes.passed(Factor::ContractNumber));
    assert!(!verification.outcomes.passed(Factor::IbanLastDigits));
}

#[test]
fn high_sends_code_and_reads_digits() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(high()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(matched(&[Factor::SmsOtp]), now);

    assert_eq!(
        drain(&mut flow),
        vec![fixed(PromptId::WhySmsCode), Action::SendCode]
    );
    assert_eq!(flow.state(), State::SendingCode);

    flow.handle_input(
        Input::CodeSent(CodeDelivery::Sent {
            last_two_digits: "07".to_owned(),
        }),
        now,
    );

    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::OtpSentTo),
            named("digit_0"),
            named("digit_7"),
            fixed(PromptId::EnterOtp),
        ]
    );

    type_digits(&mut flow, "482913", now);
    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::SmsOtp, "482913".to_owned())]
    );

    flow.handle_input(Input::EntryChecked(EntryCheck::Passed), now);
    let verification = transfer_in(&drain(&mut flow)).expect("a transfer follows");
    assert!(verification.outcomes.passed(Factor::SmsOtp));
}

#[test]
fn star_before_code_requests_new_one() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(high()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[Factor::SmsOtp]), now);
    flow.handle_input(
        Input::CodeSent(CodeDelivery::Sent {
            last_two_digits: "07".to_owned(),
        }),
        now,
    );
    drain(&mut flow);

    type_digits(&mut flow, "*", now);

    assert_eq!(
        drain(&mut flow),
        vec![Action::StopPrompts, Action::SendCode]
    );
    assert_eq!(flow.state(), State::SendingCode);
}

#[test]
fn code_not_sent_ends_unmet() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(high()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[Factor::SmsOtp]), now);
    drain(&mut flow);

    flow.handle_input(Input::CodeSent(CodeDelivery::NotSent), now);

    let actions = drain(&mut flow);
    assert_eq!(actions.first(), Some(&fixed(PromptId::OtpNotSent)));
    assert!(actions.contains(&fixed(PromptId::CouldNotVerify)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert!(!verification.outcomes.passed(Factor::SmsOtp));
    assert!(verification.outcomes.passed(Factor::ContractNumber));
}

#[test]
fn no_mobile_means_no_code() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(high()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(matched(&[]), now);

    let actions = drain(&mut flow);
    assert!(!actions.contains(&Action::SendCode));
    assert!(actions.contains(&fixed(PromptId::CouldNotVerify)));
}

#[test]
fn no_match_costs_one_attempt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(Input::EntryChecked(EntryCheck::Failed), now);

    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 1);
    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::NotRecognised),
            fixed(PromptId::EnterContractNumber),
        ]
    );
}

#[test]
fn three_wrong_contracts_end_unverified() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    for _ in 0..3 {
        type_digits(&mut flow, "99999999#", now);
        drain(&mut flow);
        flow.handle_input(Input::EntryChecked(EntryCheck::Failed), now);
    }

    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 3);
    let actions = drain(&mut flow);
    assert!(actions.contains(&fixed(PromptId::CouldNotVerify)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert_eq!(verification.customer_id, None);
    assert!(!verification.outcomes.passed(Factor::ContractNumber));
}

#[test]
fn typo_costs_no_attempt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345679#", now);
    drain(&mut flow);

    flow.handle_input(Input::EntryChecked(EntryCheck::InvalidFormat), now);

    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 0);
    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::EntryInvalid),
            fixed(PromptId::EnterContractNumber)
        ]
    );
}

#[test]
fn endless_typos_start_counting() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    for _ in 0..=MAX_FREE_TYPOS {
        type_digits(&mut flow, "123#", now);
        drain(&mut flow);
    }

    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 1);
}

#[test]
fn too_short_entry_rejected_without_lookup() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, "123#", now);

    let actions = drain(&mut flow);
    assert!(checks(&actions).is_empty());
    assert_eq!(actions.first(), Some(&fixed(PromptId::EntryInvalid)));
}

#[test]
fn letter_keys_make_entry_invalid() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, "1234A678#", now);

    assert!(checks(&drain(&mut flow)).is_empty());
}

#[test]
fn maximum_length_ends_entry_without_hash() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, "1234567890", now);
    assert!(
        checks(&drain(&mut flow)).is_empty(),
        "waits for one key too many"
    );

    flow.handle_timeout(now + MAXIMUM_LENGTH_GRACE);

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "1234567890".to_owned())]
    );
}

#[test]
fn maximum_length_then_hash_submits_at_once() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, "1234567890#", now);

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "1234567890".to_owned())]
    );
}

#[test]
fn stuck_key_is_a_typo() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, &"1".repeat(100), now);
    type_digits(&mut flow, "#", now);

    let actions = drain(&mut flow);
    assert!(
        checks(&actions).is_empty(),
        "no lookup for an over-long entry"
    );
    assert_eq!(actions.first(), Some(&fixed(PromptId::EntryInvalid)));
    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 0);
    assert_eq!(
        flow.state(),
        State::Prompting(Step::Factor(Factor::ContractNumber))
    );
}

#[test]
fn star_clears_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    type_digits(&mut flow, "999*12345678#", now);

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "12345678".to_owned())]
    );
}

#[test]
fn first_digit_timeout_costs_attempt() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    flow.handle_timeout(now + Duration::from_secs(7));
    assert!(drain(&mut flow).is_empty(), "fired before its deadline");

    flow.handle_timeout(now + Duration::from_secs(8));

    assert_eq!(flow.failed_attempts(Factor::ContractNumber), 1);
    assert_eq!(
        drain(&mut flow),
        vec![
            fixed(PromptId::NoInput),
            fixed(PromptId::EnterContractNumber),
        ]
    );
}

#[test]
fn inter_digit_timeout_submits_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "1234567", now);
    let later = now + Duration::from_secs(2);
    type_digits(&mut flow, "8", later);

    flow.handle_timeout(later + Duration::from_secs(3));
    assert!(drain(&mut flow).is_empty(), "timer restarted by each digit");

    flow.handle_timeout(later + Duration::from_secs(4));

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "12345678".to_owned())]
    );
}

#[test]
fn silent_caller_ends_unverified() {
    let mut now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    for _ in 0..3 {
        now += Duration::from_secs(8);
        flow.handle_timeout(now);
        drain(&mut flow);
        flow.handle_input(Input::PromptsFinished, now);
    }

    assert_eq!(flow.state(), State::Transferring);
}

#[test]
fn type_ahead_during_lookup_starts_next_entry() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "99999999#", now);
    drain(&mut flow);

    type_digits(&mut flow, "1234", now);
    assert!(drain(&mut flow).is_empty(), "digits during lookup are held");
    flow.handle_input(Input::EntryChecked(EntryCheck::Failed), now);
    drain(&mut flow);
    type_digits(&mut flow, "5678#", now);

    assert_eq!(
        checks(&drain(&mut flow)),
        vec![(Factor::ContractNumber, "12345678".to_owned())]
    );
}

#[test]
fn lockout_pauses_verification() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(Input::EntryChecked(EntryCheck::Locked), now);

    let actions = drain(&mut flow);
    assert!(actions.contains(&fixed(PromptId::VerificationPaused)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert_eq!(verification.stopped, Some(StopReason::Locked));
}

#[test]
fn store_unavailable_fails_closed() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    drain(&mut flow);

    flow.handle_input(Input::EntryChecked(EntryCheck::StoreUnavailable), now);

    let actions = drain(&mut flow);
    assert!(actions.contains(&fixed(PromptId::SystemUnavailable)));
    let verification = transfer_in(&actions).expect("a transfer follows");
    assert_eq!(verification.stopped, Some(StopReason::StoreUnavailable));
    assert!(!verification.outcomes.passed(Factor::ContractNumber));
}

#[test]
fn stale_check_result_is_ignored() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);

    flow.handle_input(matched(&[]), now);

    assert_eq!(
        flow.state(),
        State::Collecting(Step::Factor(Factor::ContractNumber))
    );
    assert!(drain(&mut flow).is_empty());
}

#[test]
fn digits_after_verification_are_ignored() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[]), now);
    drain(&mut flow);

    type_digits(&mut flow, "1#", now);

    assert!(drain(&mut flow).is_empty());
    assert_eq!(flow.state(), State::Transferring);
}

/// Brings a verified call up to the point where the REFER is out and the
/// closing prompt has played.
fn transferring(now: Instant) -> CallFlow {
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[]), now);
    flow.handle_input(Input::PromptsFinished, now);
    drain(&mut flow);
    flow
}

#[test]
fn closing_prompt_end_keeps_waiting_for_the_transfer() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[]), now);
    drain(&mut flow);

    flow.handle_input(Input::PromptsFinished, now + Duration::from_secs(4));

    assert!(drain(&mut flow).is_empty(), "no second REFER, no BYE");
    assert_eq!(flow.state(), State::Transferring);
    assert_eq!(flow.poll_timeout(), Some(now + TRANSFER_OUTCOME_TIMEOUT));
}

#[test]
fn transfer_outcome_during_closing_prompt_hangs_up() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "12345678#", now);
    flow.handle_input(matched(&[]), now);
    drain(&mut flow);

    flow.handle_input(Input::TransferAccepted, now);
    flow.handle_input(Input::TransferSucceeded, now);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
}

#[test]
fn transfer_without_outcome_hangs_up_after_the_timeout() {
    let now = Instant::now();
    let mut flow = transferring(now);

    flow.handle_timeout(now + TRANSFER_OUTCOME_TIMEOUT - Duration::from_millis(1));
    assert!(drain(&mut flow).is_empty(), "not before the deadline");
    flow.handle_timeout(now + TRANSFER_OUTCOME_TIMEOUT);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
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
        vec![fixed(PromptId::TransferFailed), fixed(PromptId::Goodbye)]
    );

    flow.handle_input(Input::PromptsFinished, now);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
}

#[test]
fn caller_hang_up_stops_everything() {
    let now = Instant::now();
    let mut flow = answered_and_welcomed(single_plan(basic()), now);
    type_digits(&mut flow, "1234", now);

    flow.handle_input(Input::CallerHungUp, now);

    assert_eq!(flow.state(), State::Ended);
    assert_eq!(flow.poll_timeout(), None);
    flow.handle_input(Input::PromptsFinished, now);
    type_digits(&mut flow, "5678#", now);
    assert!(checks(&drain(&mut flow)).is_empty());
}

#[test]
fn entry_digits_debug_hides_digits() {
    let digits = EntryDigits("12345678".to_owned());

    let printed = format!("{digits:?}");

    assert!(!printed.contains("1234"), "{printed}");
    assert!(printed.contains("8 digits"), "{printed}");
}

#[test]
fn transfer_without_outcome_hangs_up() {
    let now = Instant::now();
    let mut flow = transferring(now);
    flow.handle_input(Input::TransferAccepted, now);

    assert_eq!(flow.armed_timer(), Some(FlowTimer::TransferOutcome));
    flow.handle_timeout(now + TRANSFER_OUTCOME_TIMEOUT - Duration::from_millis(1));
    assert!(drain(&mut flow).is_empty(), "fired before its deadline");

    flow.handle_timeout(now + TRANSFER_OUTCOME_TIMEOUT);

    assert_eq!(drain(&mut flow), vec![Action::HangUp]);
    assert_eq!(flow.state(), State::Ended);
}

#[test]
fn failed_transfer_disarms_outcome_timer() {
    let now = Instant::now();
    let mut flow = transferring(now);

    flow.handle_input(Input::TransferFailed, now);

    assert_eq!(flow.poll_timeout(), None);
}
