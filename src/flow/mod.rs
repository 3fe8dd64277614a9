//! The call flow: what the caller hears and what their key presses mean.
//!
//! [`CallFlow`] is a sans-I/O state machine. The driver (the call task in
//! `runtime`) feeds it [`Input`]s and the current time, then drains
//! [`CallFlow::poll_action`] until it returns `None`, and wakes it again at
//! [`CallFlow::poll_timeout`]. The flow never reads a clock, plays audio,
//! sends an SMS or looks anything up itself: it asks for those through
//! [`Action`]s and learns the results through later inputs, so every branch
//! is testable with made-up times.
//!
//! The default flow:
//!
//! 1. Welcome, why we ask, and what we never ask.
//! 2. The menu of request types of the service line (skipped when it has
//!    one entry). The request type decides the rule the caller must meet.
//! 3. The contract number, then each further factor the rule needs (date of
//!    birth, postcode, last IBAN digits, a one-time code by SMS), in the
//!    order the policy gives. Digits typed during a prompt stop it and count
//!    (barge-in, type-ahead); `*` clears an entry.
//! 4. Each entry is checked by the driver: a typo caught by the format or
//!    check digit costs no attempt; a wrong value does. A factor that fails
//!    `max_attempts` times is given up, and the policy may offer another.
//! 5. The call is transferred with what was reached: the highest level met,
//!    or `unverified`. A lockout across calls or an unreachable store ends
//!    verification at once, with an explanation. The REFER goes out as the
//!    closing prompt starts, so the transfer is set up while it plays.
//! 6. After the transfer is accepted, the flow waits for its outcome; on
//!    failure it apologises and hangs up.

mod entry;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::media::prompts::PromptId;
use crate::verify::policy::{next_factor, Factor, FactorOutcomes, NextStep, Rule};

pub use entry::EntrySpec;

/// Settings of the flow that operators tune per deployment (`[flow]` in
/// the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// Failed entries of one factor allowed before it is given up.
    pub max_attempts: u32,

    /// Contract numbers shorter than this are rejected without a lookup.
    pub contract_min_digits: usize,

    /// Collection of a contract number ends by itself at this length.
    pub contract_max_digits: usize,

    /// How long to wait for the first digit after the request prompt ends.
    pub first_digit_timeout: Duration,

    /// How long to wait for the next digit once the caller started typing.
    pub inter_digit_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            contract_min_digits: 6,
            contract_max_digits: 12,
            first_digit_timeout: Duration::from_secs(8),
            inter_digit_timeout: Duration::from_secs(4),
        }
    }
}

/// Menu and rules of one call, from its service line and the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPlan {
    /// Request types of the menu with the rule each needs; key 1 selects the
    /// first. With one entry the menu is skipped.
    pub menu: Vec<(String, Rule)>,

    /// How many trailing IBAN digits are asked (`factors.iban_last_digits`).
    pub iban_last_digits: usize,
}

/// Digits the caller typed for one factor.
///
/// `Debug` prints only the length, so the digits cannot reach a log line by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct EntryDigits(String);

impl EntryDigits {
    /// Returns the digits for normalising and hashing. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EntryDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryDigits(<{} digits>)", self.0.len())
    }
}

/// Result of the check the driver performed for [`Action::CheckEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryCheck {
    /// The contract number belongs to a customer.
    ContractMatched {
        /// The customer's id.
        customer_id: String,
        /// Whether the calling number is registered to the same customer.
        caller_id_match: bool,
        /// Factors the customer has data for, so they can be asked.
        available: Vec<Factor>,
    },
    /// The value matches what is stored for the customer.
    Passed,
    /// The value is wrong; it costs one attempt.
    Failed,
    /// The format or check digit is wrong, so it was not compared and costs
    /// no attempt.
    InvalidFormat,
    /// Too many failures across calls for this contract, customer or
    /// calling number: verification is paused.
    Locked,
    /// The store could not answer. The flow fails closed.
    StoreUnavailable,
}

/// Result of [`Action::SendCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDelivery {
    /// The code went out to the mobile number ending in these two digits.
    Sent {
        /// Last two digits of the registered mobile, read out to the caller.
        last_two_digits: String,
    },
    /// No code was sent: the send limit was reached, the customer has no
    /// mobile, or every gateway failed.
    NotSent,
}

/// Outcome of verification, sent with the transfer to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The request type chosen in the menu, if any.
    pub request_type: Option<String>,
    /// The customer whose contract number was entered, if any.
    pub customer_id: Option<String>,
    /// Whether the calling number is registered to that customer.
    pub caller_id_match: bool,
    /// Passed and failed factors with their reasons, for the level, the
    /// token's `amr` and the audit trail.
    pub outcomes: FactorOutcomes,
    /// Reason verification stopped early, if it did.
    pub stopped: Option<StopReason>,
}

/// Reason verification ended before the rule was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A lockout across calls is in force.
    Locked,
    /// The store did not answer.
    StoreUnavailable,
    /// The caller made no valid menu choice.
    NoRequestType,
}

/// Something that happened to the call, fed to [`CallFlow::handle_input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The call is answered and media flows; the flow starts talking.
    Answered,
    /// The caller pressed a key (`0`-`9`, `*`, `#`, `A`-`D`).
    Digit(char),
    /// Every prompt queued so far has been played to the end.
    PromptsFinished,
    /// The answer to the last [`Action::CheckEntry`].
    EntryChecked(EntryCheck),
    /// The answer to the last [`Action::SendCode`].
    CodeSent(CodeDelivery),
    /// The transfer target accepted the REFER (202).
    TransferAccepted,
    /// The transfer reached the agent queue (a 2xx sipfrag in a NOTIFY).
    TransferSucceeded,
    /// The REFER was rejected, timed out, or the NOTIFY reported failure.
    TransferFailed,
    /// The caller hung up; the flow stops asking for anything.
    CallerHungUp,
}

/// A prompt to play: one of the fixed ones, or one named by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A prompt every deployment has.
    Fixed(PromptId),
    /// A prompt file named by configuration or composed at run time, such
    /// as `request_type_information`, `press_1` or `digit_7`.
    Named(String),
}

/// Work the flow asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Queue a prompt behind whatever is playing.
    Play(Prompt),
    /// Stop the current prompt and drop the queue (barge-in).
    StopPrompts,
    /// Check an entry for a factor and feed [`Input::EntryChecked`].
    CheckEntry {
        /// The factor the digits are for.
        factor: Factor,
        /// The digits as typed, without the terminating `#`.
        digits: EntryDigits,
    },
    /// Send a one-time code to the customer's mobile and feed
    /// [`Input::CodeSent`].
    SendCode,
    /// Issue the token for this outcome and transfer the call by REFER.
    Transfer(Verification),
    /// End the call with BYE.
    HangUp,
}

/// The flow's timers. At most one is armed at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowTimer {
    /// Fires when the caller typed nothing after the request prompt ended.
    FirstDigit,
    /// Fires when the caller paused too long between two digits; the entry
    /// is then taken as complete.
    InterDigit,
    /// Fires when a transfer has not reported its outcome in time; the
    /// flow then ends its own leg of the call.
    TransferOutcome,
}

/// How long to wait for the outcome of a REFER (the final NOTIFY, RFC 3515)
/// before ending our leg with BYE. RFC 3515 sets no limit. It is longer
/// than Timer F (64 × T1 = 32 s), so that an unanswered REFER ends with its
/// 408 and the caller hears the apology instead of a sudden BYE.
pub const TRANSFER_OUTCOME_TIMEOUT: Duration = Duration::from_secs(40);

/// The question the caller is answering: the menu or one factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A key from the menu of request types.
    Menu,
    /// The digits of one factor.
    Factor(Factor),
}

/// Position of the call in the flow. The names appear in the per-call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not answered yet.
    Idle,
    /// Playing the welcome and the explanations.
    Welcome,
    /// Playing the question for a step.
    Prompting(Step),
    /// The question has ended or the caller started typing.
    Collecting(Step),
    /// Waiting for the driver's check of an entry.
    Checking(Factor),
    /// Waiting for the driver to send a one-time code.
    SendingCode,
    /// The REFER is out and the closing prompt plays while the transfer
    /// is set up; waiting for its outcome.
    Transferring,
    /// The transfer failed; playing the apology before hanging up.
    Apologising,
    /// Nothing more to do.
    Ended,
}

impl State {
    /// Returns the state's name for logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Welcome => "welcome",
            State::Prompting(Step::Menu) => "menu",
            State::Prompting(Step::Factor(_)) => "prompting",
            State::Collecting(Step::Menu) => "menu-choice",
            State::Collecting(Step::Factor(_)) => "collecting",
            State::Checking(_) => "checking",
            State::SendingCode => "sending-code",
            State::Transferring => "transferring",
            State::Apologising => "apologising",
            State::Ended => "ended",
        }
    }
}

/// How long a variable-length entry at its maximum length waits for `#` or
/// for one key too many before it is submitted. Long enough for the next key
/// of a fast typist or a stuck key (keys come every 100-300 ms), short
/// enough that a caller who stops typing is not kept waiting.
const MAXIMUM_LENGTH_GRACE: Duration = Duration::from_millis(1500);

/// Typos forgiven per factor before they count as failed attempts, so a
/// caller cannot probe formats forever.
const MAX_FREE_TYPOS: u32 = 3;

/// The call flow of one call. See the module docs for the driver contract.
#[derive(Debug)]
pub struct CallFlow {
    /// Limits and timeouts, fixed for the call.
    config: FlowConfig,

    /// Menu and rules of this call's service line.
    plan: CallPlan,

    /// Current state; the driver logs its changes.
    state: State,

    /// The chosen request type and its rule, once the menu is done.
    request: Option<(String, Rule)>,

    /// Digits typed in the current entry, including type-ahead typed while
    /// a prompt was still playing.
    entry: String,

    /// Keys pressed while a check was running, replayed as the start of the
    /// next entry if the check asks for another one.
    type_ahead: Vec<char>,

    /// Whether more keys came after the entry reached its maximum length,
    /// which makes it a typo.
    overflowed: bool,

    /// Failed entries per factor (and for the menu, under `None`).
    attempts: HashMap<Option<Factor>, u32>,

    /// Forgiven typos per factor.
    typos: HashMap<Factor, u32>,

    /// The customer found by the contract number.
    customer_id: Option<String>,

    /// Whether the calling number is registered to that customer.
    caller_id_match: bool,

    /// Factors the customer has data for; known after the contract number.
    available: Vec<Factor>,

    /// Passed and failed factors, with reasons.
    outcomes: FactorOutcomes,

    /// Deadline of the armed timer, if any.
    timer: Option<(FlowTimer, Instant)>,

    /// Actions not yet drained by the driver.
    actions: VecDeque<Action>,
}

impl CallFlow {
    /// Creates the flow for a new call, in state [`State::Idle`].
    pub fn new(config: FlowConfig, plan: CallPlan) -> Self {
        Self {
            config,
            plan,
            state: State::Idle,
            request: None,
            entry: String::new(),
            type_ahead: Vec::new(),
            overflowed: false,
            attempts: HashMap::new(),
            typos: HashMap::new(),
            customer_id: None,
            caller_id_match: false,
            available: Vec::new(),
            outcomes: FactorOutcomes::default(),
            timer: None,
            actions: VecDeque::new(),
        }
    }

    /// Returns the current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Returns how many entries of `factor` have failed so far.
    pub fn failed_attempts(&self, factor: Factor) -> u32 {
        self.attempts.get(&Some(factor)).copied().unwrap_or(0)
    }

    /// Feeds one input. Drain [`poll_action`](Self::poll_action) afterwards.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Answered => self.on_answered(),
            Input::Digit(digit) => self.on_digit(digit, now),
            Input::PromptsFinished => self.on_prompts_finished(now),
            Input::EntryChecked(check) => self.on_entry_checked(check, now),
            Input::CodeSent(delivery) => self.on_code_sent(delivery, now),
            Input::TransferAccepted => {}
            Input::TransferSucceeded => self.on_transfer_succeeded(),
            Input::TransferFailed => self.on_transfer_failed(),
            Input::CallerHungUp => self.end(),
        }
    }

    /// Fires the armed timer if its deadline has passed. The driver calls
    /// this when [`poll_timeout`](Self::poll_timeout) is reached; early or
    /// repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((timer, deadline)) = self.timer else {
            return;
        };
        if now < deadline {
            return;
        }
        self.timer = None;

        match (timer, self.state) {
            (FlowTimer::FirstDigit, State::Collecting(step)) => {
                self.fail_step(step, Some(PromptId::NoInput), "no input", now)
            }
            (FlowTimer::InterDigit, State::Collecting(step)) => self.submit(step, now),
            (FlowTimer::TransferOutcome, State::Transferring) => self.hang_up(),
            _ => {}
        }
    }

    /// Returns the next action for the driver, or `None` when there is none.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Returns when [`handle_timeout`](Self::handle_timeout) must be called
    /// next, or `None` while no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(_, deadline)| deadline)
    }

    /// Returns which timer is armed, for tests and logs.
    pub fn armed_timer(&self) -> Option<FlowTimer> {
        self.timer.map(|(timer, _)| timer)
    }

    fn on_answered(&mut self) {
        if self.state != State::Idle {
            return;
        }

        self.state = State::Welcome;
        self.play(PromptId::Welcome);
        self.play(PromptId::WhyWeAsk);
        self.play(PromptId::WhatWeNeverAsk);

        if self.plan.menu.len() == 1 {
            self.request = self.plan.menu.first().cloned();
            self.ask(Step::Factor(Factor::ContractNumber), None);
        } else {
            self.ask(Step::Menu, None);
        }
        // The welcome is still playing: stay in Welcome until it ends.
        self.state = State::Welcome;
    }

    /// Queues the question for `step`, after `lead` when given (an
    /// explanation of what went wrong or why more is asked), and moves to
    /// `Prompting(step)`.
    fn ask(&mut self, step: Step, lead: Option<PromptId>) {
        self.state = State::Prompting(step);
        self.entry.clear();
        self.overflowed = false;
        if let Some(lead) = lead {
            self.play(lead);
        }

        match step {
            Step::Menu => {
                self.play(PromptId::ChooseRequestType);
                for (index, (name, _)) in self.plan.menu.iter().enumerate() {
                    let key = index + 1;
                    self.actions
                        .push_back(Action::Play(Prompt::Named(format!("request_type_{name}"))));
                    self.actions
                        .push_back(Action::Play(Prompt::Named(format!("press_{key}"))));
                }
            }
            Step::Factor(factor) => {
                match factor {
                    Factor::ContractNumber => self.play(PromptId::EnterContractNumber),
                    Factor::DateOfBirth => self.play(PromptId::EnterDateOfBirth),
                    Factor::Postcode => self.play(PromptId::EnterPostcode),
                    Factor::IbanLastDigits => {
                        let count = self.plan.iban_last_digits;
                        self.actions.push_back(Action::Play(Prompt::Named(format!(
                            "enter_iban_last_digits_{count}"
                        ))));
                    }
                    Factor::SmsOtp => self.play(PromptId::EnterOtp),
                    // Known from the start of the call, never asked.
                    Factor::CallerIdMatch => {}
                }
            }
        }
    }

    fn on_digit(&mut self, digit: char, now: Instant) {
        match self.state {
            State::Welcome => {
                // Barge-in: the caller knows what to do, so stop talking.
                self.actions.push_back(Action::StopPrompts);
                let step = self.first_step();
                self.state = State::Collecting(step);
                self.take_digit(step, digit, now);
            }
            State::Prompting(step) => {
                self.actions.push_back(Action::StopPrompts);
                self.state = State::Collecting(step);
                self.take_digit(step, digit, now);
            }
            State::Collecting(step) => self.take_digit(step, digit, now),
            State::Checking(_) | State::SendingCode => self.type_ahead.push(digit),
            State::Idle | State::Transferring | State::Apologising | State::Ended => {}
        }
    }

    /// Returns the step the welcome leads to.
    fn first_step(&self) -> Step {
        if self.plan.menu.len() == 1 {
            Step::Factor(Factor::ContractNumber)
        } else {
            Step::Menu
        }
    }

    fn take_digit(&mut self, step: Step, digit: char, now: Instant) {
        let Step::Factor(factor) = step else {
            self.timer = None;
            self.choose_from_menu(digit, now);
            return;
        };
        let spec = EntrySpec::for_factor(factor, &self.config, self.plan.iban_last_digits);

        match digit {
            '#' => {
                self.timer = None;
                self.submit(step, now);
            }
            '*' if factor == Factor::SmsOtp && self.entry.is_empty() => {
                self.timer = None;
                self.request_code();
            }
            '*' => {
                self.entry.clear();
                self.overflowed = false;
                self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
            }
            _ if spec.is_complete(&self.entry) => {
                // Keys past the maximum length make the entry a typo, such as
                // a stuck key or the digits of another number. They are
                // swallowed until the caller pauses or presses #, so none
                // becomes type-ahead.
                self.overflowed = true;
                self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
            }
            _ => {
                self.entry.push(digit);
                if !spec.is_complete(&self.entry) {
                    self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
                } else if spec.min_digits == spec.max_digits {
                    // A fixed-length entry (date, code) is complete at once.
                    self.timer = None;
                    self.submit(step, now);
                } else {
                    // At the maximum of a variable-length entry, wait briefly
                    // for a # or for more keys that would make it too long.
                    self.arm(FlowTimer::InterDigit, now + MAXIMUM_LENGTH_GRACE);
                }
            }
        }
    }

    fn choose_from_menu(&mut self, digit: char, now: Instant) {
        let choice = digit
            .to_digit(10)
            .and_then(|key| usize::try_from(key).ok())
            .and_then(|key| key.checked_sub(1))
            .and_then(|index| self.plan.menu.get(index))
            .cloned();

        match choice {
            Some(request) => {
                self.request = Some(request);
                self.ask(Step::Factor(Factor::ContractNumber), None);
            }
            None => self.fail_step(
                Step::Menu,
                Some(PromptId::InvalidChoice),
                "invalid choice",
                now,
            ),
        }
    }

    fn on_prompts_finished(&mut self, now: Instant) {
        match self.state {
            State::Welcome => {
                let step = self.first_step();
                self.state = State::Collecting(step);
                self.arm(FlowTimer::FirstDigit, now + self.config.first_digit_timeout);
            }
            State::Prompting(step) => {
                self.state = State::Collecting(step);
                self.arm(FlowTimer::FirstDigit, now + self.config.first_digit_timeout);
            }
            State::Apologising => self.hang_up(),
            State::Idle
            | State::Collecting(_)
            | State::Checking(_)
            | State::SendingCode
            | State::Transferring
            | State::Ended => {}
        }
    }

    fn submit(&mut self, step: Step, now: Instant) {
        let Step::Factor(factor) = step else {
            return;
        };
        let entry = std::mem::take(&mut self.entry);
        let overflowed = std::mem::take(&mut self.overflowed);

        let spec = EntrySpec::for_factor(factor, &self.config, self.plan.iban_last_digits);
        if overflowed || !spec.accepts(&entry) {
            self.on_typo(factor, now);
            return;
        }

        self.state = State::Checking(factor);
        self.actions.push_back(Action::CheckEntry {
            factor,
            digits: EntryDigits(entry),
        });
    }

    /// Forgives a wrongly formed entry a few times, then counts it.
    fn on_typo(&mut self, factor: Factor, now: Instant) {
        let typos = self.typos.entry(factor).or_insert(0);
        *typos += 1;

        if *typos > MAX_FREE_TYPOS {
            self.fail_step(
                Step::Factor(factor),
                Some(PromptId::NotRecognised),
                "too many malformed entries",
                now,
            );
            return;
        }

        self.ask(Step::Factor(factor), Some(PromptId::EntryInvalid));
    }

    fn on_entry_checked(&mut self, check: EntryCheck, now: Instant) {
        let State::Checking(factor) = self.state else {
            return;
        };

        match check {
            EntryCheck::ContractMatched {
                customer_id,
                caller_id_match,
                available,
            } => {
                self.customer_id = Some(customer_id);
                self.caller_id_match = caller_id_match;
                self.available = available;
                if caller_id_match {
                    self.outcomes
                        .record(Factor::CallerIdMatch, true, "calling number registered");
                }
                self.outcomes
                    .record(Factor::ContractNumber, true, "contract number matched");
                self.advance(now);
            }
            EntryCheck::Passed => {
                self.outcomes.record(factor, true, "matched");
                self.advance(now);
            }
            EntryCheck::Failed => {
                let reason = if factor == Factor::ContractNumber {
                    "no customer has this contract number"
                } else {
                    "did not match"
                };
                self.fail_step(
                    Step::Factor(factor),
                    Some(PromptId::NotRecognised),
                    reason,
                    now,
                );
                self.replay_type_ahead(now);
            }
            EntryCheck::InvalidFormat => {
                self.on_typo(factor, now);
                self.replay_type_ahead(now);
            }
            EntryCheck::Locked => {
                self.outcomes.record(factor, false, "locked out");
                self.stop(StopReason::Locked, PromptId::VerificationPaused, now);
            }
            EntryCheck::StoreUnavailable => {
                self.outcomes.record(factor, false, "store unavailable");
                self.stop(
                    StopReason::StoreUnavailable,
                    PromptId::SystemUnavailable,
                    now,
                );
            }
        }
    }

    /// Asks the policy what comes next and either asks it or closes.
    fn advance(&mut self, now: Instant) {
        self.type_ahead.clear();
        let Some((_, rule)) = &self.request else {
            self.close(
                PromptId::CouldNotVerify,
                Some(StopReason::NoRequestType),
                now,
            );
            return;
        };

        let available = self.available.clone();
        let has_customer = self.customer_id.is_some();
        let is_available = |factor: Factor| match factor {
            Factor::ContractNumber => true,
            Factor::CallerIdMatch => false,
            other => has_customer && available.contains(&other),
        };

        match next_factor(rule, &self.outcomes, &is_available) {
            NextStep::Ask(Factor::SmsOtp) => {
                self.play(PromptId::WhySmsCode);
                self.request_code();
            }
            NextStep::Ask(factor) => {
                let lead = (factor != Factor::ContractNumber).then_some(PromptId::ExtraCheckNeeded);
                self.ask(Step::Factor(factor), lead);
            }
            NextStep::Satisfied => self.close(PromptId::ThankYouConnecting, None, now),
            NextStep::Unsatisfiable => self.close(PromptId::CouldNotVerify, None, now),
        }
    }

    fn request_code(&mut self) {
        self.state = State::SendingCode;
        self.actions.push_back(Action::SendCode);
    }

    fn on_code_sent(&mut self, delivery: CodeDelivery, now: Instant) {
        if self.state != State::SendingCode {
            return;
        }

        match delivery {
            CodeDelivery::Sent { last_two_digits } => {
                self.state = State::Prompting(Step::Factor(Factor::SmsOtp));
                self.play(PromptId::OtpSentTo);
                for digit in last_two_digits.chars().filter(char::is_ascii_digit) {
                    self.actions
                        .push_back(Action::Play(Prompt::Named(format!("digit_{digit}"))));
                }
                self.play(PromptId::EnterOtp);
            }
            CodeDelivery::NotSent => {
                self.play(PromptId::OtpNotSent);
                self.outcomes
                    .record(Factor::SmsOtp, false, "no code could be sent");
                self.advance(now);
            }
        }
    }

    /// Counts a failed entry and either asks again, moves on, or gives up.
    fn fail_step(&mut self, step: Step, explanation: Option<PromptId>, reason: &str, now: Instant) {
        let key = match step {
            Step::Menu => None,
            Step::Factor(factor) => Some(factor),
        };
        let attempts = self.attempts.entry(key).or_insert(0);
        *attempts += 1;
        let exhausted = *attempts >= self.config.max_attempts;
        self.timer = None;

        if !exhausted {
            self.ask(step, explanation);
            return;
        }

        match step {
            Step::Menu => self.close(
                PromptId::CouldNotVerify,
                Some(StopReason::NoRequestType),
                now,
            ),
            Step::Factor(factor) => {
                self.outcomes.record(factor, false, reason);
                if factor == Factor::ContractNumber {
                    self.close(PromptId::CouldNotVerify, None, now);
                } else {
                    self.advance(now);
                }
            }
        }
    }

    /// Feeds keys typed during the check into the new entry, as if typed
    /// now; the first one barges in on the prompt just queued.
    fn replay_type_ahead(&mut self, now: Instant) {
        for digit in std::mem::take(&mut self.type_ahead) {
            self.on_digit(digit, now);
        }
    }

    fn stop(&mut self, reason: StopReason, prompt: PromptId, now: Instant) {
        self.close(prompt, Some(reason), now);
    }

    fn close(&mut self, prompt: PromptId, stopped: Option<StopReason>, now: Instant) {
        self.type_ahead.clear();
        self.entry.clear();
        self.actions.push_back(Action::StopPrompts);
        self.play(prompt);

        // The REFER goes out while the closing prompt plays: the caller
        // hears it during the few hundred milliseconds the transfer takes,
        // instead of waiting for it to end before the transfer starts.
        let verification = Verification {
            request_type: self.request.as_ref().map(|(name, _)| name.clone()),
            customer_id: self.customer_id.clone(),
            caller_id_match: self.caller_id_match,
            outcomes: self.outcomes.clone(),
            stopped,
        };
        self.state = State::Transferring;
        self.arm(FlowTimer::TransferOutcome, now + TRANSFER_OUTCOME_TIMEOUT);
        self.actions.push_back(Action::Transfer(verification));
    }

    fn on_transfer_succeeded(&mut self) {
        if self.state == State::Transferring {
            self.hang_up();
        }
    }

    fn on_transfer_failed(&mut self) {
        if self.state != State::Transferring {
            return;
        }

        self.timer = None;
        self.state = State::Apologising;
        self.play(PromptId::TransferFailed);
        self.play(PromptId::Goodbye);
    }

    fn hang_up(&mut self) {
        self.state = State::Ended;
        self.timer = None;
        self.actions.push_back(Action::HangUp);
    }

    fn end(&mut self) {
        self.state = State::Ended;
        self.timer = None;
        self.entry.clear();
        self.type_ahead.clear();
    }

    fn play(&mut self, prompt: PromptId) {
        self.actions.push_back(Action::Play(Prompt::Fixed(prompt)));
    }

    fn arm(&mut self, timer: FlowTimer, deadline: Instant) {
        self.timer = Some((timer, deadline));
    }
}

#[cfg(test)]
mod tests;
