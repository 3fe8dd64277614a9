//! The call flow: what the caller hears and what their key presses mean.
//!
//! [`CallFlow`] is a sans-I/O state machine. The driver (the call task in
//! `runtime`) feeds it [`Input`]s and the current time, then drains
//! [`CallFlow::poll_action`] until it returns `None`, and wakes it again at
//! [`CallFlow::poll_timeout`]. The flow never reads a clock, plays audio or
//! looks anything up itself: it asks for those through [`Action`]s and learns
//! the results through later inputs, so every branch is testable with made-up
//! times.
//!
//! The default flow:
//!
//! 1. Welcome, why we ask, what we never ask, then the request for the
//!    contract number. Digits typed during any prompt are kept (type-ahead)
//!    and stop the prompt (barge-in).
//! 2. Collect digits until `#`, the maximum length or the inter-digit
//!    timeout. `*` clears what was typed so far.
//! 3. Ask the driver to check the contract number. A match verifies the
//!    caller at level `basic`; anything else costs one attempt.
//! 4. After the last failed attempt, explain that verification did not
//!    succeed and transfer the call marked `unverified`.
//! 5. After the transfer is accepted, wait for its outcome; on failure,
//!    apologise and hang up.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::media::prompts::PromptId;

/// Settings of the flow that operators tune per deployment (`[flow]` in
/// the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// Failed entries allowed before the call goes to an agent unverified.
    pub max_attempts: u32,

    /// Entries shorter than this are rejected without a lookup.
    pub contract_min_digits: usize,

    /// Collection ends by itself when the caller has typed this many digits.
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

/// Digits the caller typed as a contract number.
///
/// `Debug` and `Display` print only the length, so the digits cannot reach a
/// log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ContractDigits(String);

impl ContractDigits {
    /// Returns the digits for hashing. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ContractDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContractDigits(<{} digits>)", self.0.len())
    }
}

/// Result of the contract lookup that the driver performed for
/// [`Action::CheckContract`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractCheck {
    /// The contract belongs to this customer.
    Match {
        /// The customer's id in the customers file.
        customer_id: String,
        /// Whether the calling number is registered to the same customer.
        caller_id_match: bool,
    },
    /// No customer has this contract number.
    NoMatch,
    /// The store could not answer. The flow fails closed: no level is
    /// granted and the call goes to an agent unverified.
    StoreUnavailable,
}

/// How the call leaves the flow towards an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The caller proved knowledge of a contract number (`acr` = `basic`).
    Basic {
        /// The customer the contract number belongs to.
        customer_id: String,
        /// A weak signal recorded alongside; never enough on its own.
        caller_id_match: bool,
    },
    /// The caller could not be verified (`acr` = `unverified`).
    Unverified {
        /// Why, for the audit trail and the log.
        reason: UnverifiedReason,
    },
}

/// Why a call leaves the flow unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedReason {
    /// Every attempt failed.
    AttemptsExhausted,
    /// The store did not answer, so nothing could be checked.
    StoreUnavailable,
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
    /// The answer to the last [`Action::CheckContract`].
    ContractChecked(ContractCheck),
    /// The transfer target accepted the REFER (202).
    TransferAccepted,
    /// The transfer reached the agent queue (a 2xx sipfrag in a NOTIFY).
    TransferSucceeded,
    /// The REFER was rejected, timed out, or the NOTIFY reported failure.
    TransferFailed,
    /// The caller hung up; the flow stops asking for anything.
    CallerHungUp,
}

/// Work the flow asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Queue a prompt behind whatever is playing.
    Play(PromptId),
    /// Stop the current prompt and drop the queue (barge-in).
    StopPrompts,
    /// Look the contract number up and feed [`Input::ContractChecked`].
    CheckContract(ContractDigits),
    /// Issue the token for this outcome and transfer the call by REFER.
    Transfer(Verification),
    /// End the call with BYE.
    HangUp,
}

/// The flow's timers. Each is armed at most once at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowTimer {
    /// Fires when the caller typed nothing after the request prompt ended.
    FirstDigit,
    /// Fires when the caller paused too long between two digits; the entry
    /// is then taken as complete.
    InterDigit,
}

/// Where the call is in the flow. The names appear in the per-call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not answered yet.
    Idle,
    /// Playing the welcome and the explanations before the first request.
    Welcome,
    /// Playing the request for the contract number (again).
    Prompting,
    /// The request has ended or the caller started typing; collecting digits.
    Collecting,
    /// Waiting for the driver's contract lookup.
    Checking,
    /// Playing the closing prompt before the transfer.
    Closing,
    /// The REFER is out; waiting for its outcome.
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
            State::Prompting => "prompting",
            State::Collecting => "collecting",
            State::Checking => "checking",
            State::Closing => "closing",
            State::Transferring => "transferring",
            State::Apologising => "apologising",
            State::Ended => "ended",
        }
    }
}

/// The call flow of one call. See the module docs for the driver contract.
#[derive(Debug)]
pub struct CallFlow {
    /// Limits and timeouts, fixed for the call.
    config: FlowConfig,

    /// Current state; the driver logs its changes.
    state: State,

    /// Digits typed in the current entry, including type-ahead typed while
    /// a prompt was still playing.
    entry: String,

    /// Keys pressed while a lookup was running, replayed as the start of the
    /// next entry if the lookup fails.
    type_ahead: Vec<char>,

    /// Failed entries so far.
    failed_attempts: u32,

    /// The outcome decided in `Closing`, sent with the transfer once the
    /// closing prompt has played.
    pending_transfer: Option<Verification>,

    /// Deadline of the armed timer, if any.
    timer: Option<(FlowTimer, Instant)>,

    /// Actions not yet drained by the driver.
    actions: VecDeque<Action>,
}

impl CallFlow {
    /// Creates the flow for a new call, in state [`State::Idle`].
    pub fn new(config: FlowConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            entry: String::new(),
            type_ahead: Vec::new(),
            failed_attempts: 0,
            pending_transfer: None,
            timer: None,
            actions: VecDeque::new(),
        }
    }

    /// Returns the current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Returns how many entries have failed so far.
    pub fn failed_attempts(&self) -> u32 {
        self.failed_attempts
    }

    /// Feeds one input. Drain [`poll_action`](Self::poll_action) afterwards.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Answered => self.on_answered(),
            Input::Digit(digit) => self.on_digit(digit, now),
            Input::PromptsFinished => self.on_prompts_finished(now),
            Input::ContractChecked(check) => self.on_contract_checked(check, now),
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

        match timer {
            FlowTimer::FirstDigit => {
                self.fail_attempt(Some(PromptId::NoInput));
            }
            FlowTimer::InterDigit => self.submit_entry(),
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
        self.actions.push_back(Action::Play(PromptId::Welcome));
        self.actions.push_back(Action::Play(PromptId::WhyWeAsk));
        self.actions
            .push_back(Action::Play(PromptId::WhatWeNeverAsk));
        self.actions
            .push_back(Action::Play(PromptId::EnterContractNumber));
    }

    fn on_digit(&mut self, digit: char, now: Instant) {
        match self.state {
            State::Welcome | State::Prompting => {
                // Barge-in: the caller knows what to do, so stop talking.
                self.actions.push_back(Action::StopPrompts);
                self.state = State::Collecting;
                self.take_digit(digit, now);
            }
            State::Collecting => self.take_digit(digit, now),
            State::Checking => self.type_ahead.push(digit),
            State::Idle
            | State::Closing
            | State::Transferring
            | State::Apologising
            | State::Ended => {}
        }
    }

    fn take_digit(&mut self, digit: char, now: Instant) {
        match digit {
            '#' => {
                self.timer = None;
                self.submit_entry();
            }
            '*' => {
                self.entry.clear();
                self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
            }
            '0'..='9' => {
                self.entry.push(digit);
                if self.entry.len() >= self.config.contract_max_digits {
                    self.timer = None;
                    self.submit_entry();
                } else {
                    self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
                }
            }
            // A-D exist on some keypads but never in a contract number.
            _ => {
                self.entry.push(digit);
                self.arm(FlowTimer::InterDigit, now + self.config.inter_digit_timeout);
            }
        }
    }

    fn on_prompts_finished(&mut self, now: Instant) {
        match self.state {
            State::Welcome | State::Prompting => {
                self.state = State::Collecting;
                self.arm(FlowTimer::FirstDigit, now + self.config.first_digit_timeout);
            }
            State::Closing => {
                if let Some(verification) = self.pending_transfer.take() {
                    self.state = State::Transferring;
                    self.actions.push_back(Action::Transfer(verification));
                }
            }
            State::Apologising => self.hang_up(),
            State::Idle
            | State::Collecting
            | State::Checking
            | State::Transferring
            | State::Ended => {}
        }
    }

    fn submit_entry(&mut self) {
        let entry = std::mem::take(&mut self.entry);

        let well_formed = entry.len() >= self.config.contract_min_digits
            && entry.len() <= self.config.contract_max_digits
            && entry.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            self.fail_attempt(Some(PromptId::NotRecognised));
            return;
        }

        self.state = State::Checking;
        self.actions
            .push_back(Action::CheckContract(ContractDigits(entry)));
    }

    fn on_contract_checked(&mut self, check: ContractCheck, now: Instant) {
        if self.state != State::Checking {
            return;
        }

        match check {
            ContractCheck::Match {
                customer_id,
                caller_id_match,
            } => {
                self.entry.clear();
                self.close(
                    PromptId::ThankYouConnecting,
                    Verification::Basic {
                        customer_id,
                        caller_id_match,
                    },
                );
            }
            ContractCheck::NoMatch => {
                self.fail_attempt(Some(PromptId::NotRecognised));
                self.replay_type_ahead(now);
            }
            ContractCheck::StoreUnavailable => {
                self.entry.clear();
                self.close(
                    PromptId::CouldNotVerify,
                    Verification::Unverified {
                        reason: UnverifiedReason::StoreUnavailable,
                    },
                );
            }
        }
    }

    /// Counts a failed entry and either asks again or gives up.
    fn fail_attempt(&mut self, explanation: Option<PromptId>) {
        self.failed_attempts += 1;
        self.timer = None;

        if self.failed_attempts >= self.config.max_attempts {
            self.entry.clear();
            self.close(
                PromptId::CouldNotVerify,
                Verification::Unverified {
                    reason: UnverifiedReason::AttemptsExhausted,
                },
            );
            return;
        }

        self.state = State::Prompting;
        if let Some(prompt) = explanation {
            self.actions.push_back(Action::Play(prompt));
        }
        self.actions
            .push_back(Action::Play(PromptId::EnterContractNumber));
    }

    /// Feeds keys typed during the lookup into the new entry, as if typed
    /// now; the first one barges in on the prompt just queued.
    fn replay_type_ahead(&mut self, now: Instant) {
        for digit in std::mem::take(&mut self.type_ahead) {
            self.on_digit(digit, now);
        }
    }

    fn close(&mut self, prompt: PromptId, verification: Verification) {
        self.type_ahead.clear();
        self.state = State::Closing;
        self.timer = None;
        self.pending_transfer = Some(verification);
        self.actions.push_back(Action::StopPrompts);
        self.actions.push_back(Action::Play(prompt));
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

        self.state = State::Apologising;
        self.actions
            .push_back(Action::Play(PromptId::TransferFailed));
        self.actions.push_back(Action::Play(PromptId::Goodbye));
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
        self.pending_transfer = None;
    }

    fn arm(&mut self, timer: FlowTimer, deadline: Instant) {
        self.timer = Some((timer, deadline));
    }
}

#[cfg(test)]
mod tests;
