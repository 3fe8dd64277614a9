//! The verification policy: which knowledge factors each request type needs.
//!
//! Verification is proportional to what the caller asks. A *request type*
//! (information, contract change, financial change, …) requires an
//! assurance *level*, and a level is a [`Rule`] over [`Factor`]s. All of it
//! comes from the config file; this module holds no policy of its own.
//!
//! The call flow drives a verification with [`next_factor`]: it records each
//! factor's result in [`FactorOutcomes`] and asks again until the answer is
//! [`NextStep::Satisfied`] or [`NextStep::Unsatisfiable`]. Everything here is
//! pure and unit-tested without a call.

use std::fmt;

use crate::config::Config;
use crate::media::prompts::Language;

/// A knowledge or possession factor that a level can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// A contract or customer number, typed on the keypad.
    ContractNumber,
    /// Date of birth, typed as DDMMYYYY.
    DateOfBirth,
    /// The 4 postcode digits followed by the house number.
    Postcode,
    /// The last digits of the IBAN the customer pays from
    /// (`factors.iban_last_digits` of them). Never the full IBAN.
    IbanLastDigits,
    /// A one-time code sent by SMS to the registered mobile.
    SmsOtp,
    /// The calling number is registered to the customer. Known from the
    /// start of the call and never asked; caller ID can be spoofed, so it is a
    /// weak signal.
    CallerIdMatch,
}

impl Factor {
    /// Every factor, in the order of the config documentation.
    pub const ALL: [Factor; 6] = [
        Factor::ContractNumber,
        Factor::DateOfBirth,
        Factor::Postcode,
        Factor::IbanLastDigits,
        Factor::SmsOtp,
        Factor::CallerIdMatch,
    ];

    /// Returns the name used in the config file and audit records.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Factor::ContractNumber => "contract_number",
            Factor::DateOfBirth => "date_of_birth",
            Factor::Postcode => "postcode",
            Factor::IbanLastDigits => "iban_last_digits",
            Factor::SmsOtp => "sms_otp",
            Factor::CallerIdMatch => "caller_id_match",
        }
    }

    /// Parses a config name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|factor| factor.name() == name)
    }

    /// Returns whether the factor is a knowledge factor, which RFC 8176
    /// calls knowledge-based authentication (`kba`).
    fn is_knowledge(self) -> bool {
        matches!(
            self,
            Factor::ContractNumber
                | Factor::DateOfBirth
                | Factor::Postcode
                | Factor::IbanLastDigits
        )
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a level is reached: every `all_of` factor passed and, when `any_of`
/// is not empty, at least one `any_of` factor passed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Factors that must all pass, asked in this order.
    pub all_of: Vec<Factor>,
    /// Alternatives of which one must pass, tried in this order. Empty means
    /// no alternative is needed.
    pub any_of: Vec<Factor>,
}

impl Rule {
    /// Returns whether `outcomes` reach this rule.
    #[must_use]
    pub fn is_satisfied(&self, outcomes: &FactorOutcomes) -> bool {
        let all = self.all_of.iter().all(|factor| outcomes.passed(*factor));
        let any = self.any_of.is_empty() || self.any_of.iter().any(|f| outcomes.passed(*f));
        all && any
    }

    /// Returns whether the rule names `factor`.
    #[must_use]
    pub fn uses(&self, factor: Factor) -> bool {
        self.all_of.contains(&factor) || self.any_of.contains(&factor)
    }

    /// Returns whether a passed caller ID match alone would satisfy the rule.
    /// The config allows that only for the lowest level, because caller ID
    /// can be spoofed.
    #[must_use]
    pub fn satisfied_by_caller_id_alone(&self) -> bool {
        let mut outcomes = FactorOutcomes::new();
        outcomes.pass(Factor::CallerIdMatch, "caller ID only");
        self.is_satisfied(&outcomes)
    }
}

/// A named assurance level (`[levels.NAME]`). Its name is the token's `acr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Name from the config, such as `substantial`.
    pub name: String,
    /// Factors that reach the level.
    pub rule: Rule,
}

/// A kind of request a caller can make (`[request_types.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestType {
    /// Name from the config, such as `contract_change`; goes into tokens and
    /// audit records.
    pub name: String,
    /// Name of the level the request type requires.
    pub level: String,
    /// Refer-To target of calls of this type: the configured
    /// `agent_queue_uri`, or `transfer.agent_queue_uri` when not set.
    pub agent_queue_uri: String,
}

/// A dialled number or group of numbers with its own language and menu
/// (`[[service_lines]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLine {
    /// Name from the config, for logs.
    pub name: String,
    /// Dialled numbers in E.164 that select this line. Empty for the fallback
    /// line, which takes every other call.
    pub numbers: Vec<String>,
    /// Language the caller hears first.
    pub language: Language,
    /// Request type names offered by the menu; key 1 selects the first.
    pub menu: Vec<String>,
}

impl ServiceLine {
    /// Returns the request type that menu key `key` (1 to 9) selects.
    #[must_use]
    pub fn request_type_for_key(&self, key: u8) -> Option<&str> {
        let index = usize::from(key).checked_sub(1)?;
        self.menu.get(index).map(String::as_str)
    }
}

/// Error building a [`Policy`]. The config reader reports these cases with
/// their line first, so they reach this type only when a policy is built in
/// code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No service line has an empty number list.
    #[error("no fallback service line; give exactly one service line an empty `numbers` list")]
    NoFallbackLine,
    /// Two service lines have an empty number list.
    #[error(
        "service lines {first} and {second} are both fallback lines; give one of them numbers"
    )]
    SeveralFallbackLines {
        /// The first fallback line.
        first: String,
        /// The second fallback line.
        second: String,
    },
    /// A request type names a level that does not exist.
    #[error("request type {request_type} requires level {level}, which is not defined")]
    UnknownLevel {
        /// The request type.
        request_type: String,
        /// The missing level.
        level: String,
    },
    /// A menu names a request type that does not exist.
    #[error(
        "service line {service_line} offers request type {request_type}, which is not defined"
    )]
    UnknownRequestType {
        /// The service line.
        service_line: String,
        /// The missing request type.
        request_type: String,
    },
}

/// The verification policy of one deployment (`[policy]`, `[levels.*]`,
/// `[request_types.*]` and `[[service_lines]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `policy.version`; written into tokens and audit records so that a
    /// decision can be traced to the policy that made it.
    version: String,
    /// Levels from lowest to highest, in config file order.
    levels: Vec<Level>,
    /// Request types in config file order.
    request_types: Vec<RequestType>,
    /// Service lines with dialled numbers.
    numbered_lines: Vec<ServiceLine>,
    /// The line for every other dialled number, and for calls without one.
    fallback_line: ServiceLine,
}

impl Policy {
    /// Builds a policy, checking that exactly one service line is the
    /// fallback and that every level and request type named exists.
    pub fn new(
        version: String,
        levels: Vec<Level>,
        request_types: Vec<RequestType>,
        service_lines: Vec<ServiceLine>,
    ) -> Result<Policy, PolicyError> {
        for request_type in &request_types {
            if !levels.iter().any(|level| level.name == request_type.level) {
                return Err(PolicyError::UnknownLevel {
                    request_type: request_type.name.clone(),
                    level: request_type.level.clone(),
                });
            }
        }
        for line in &service_lines {
            for name in &line.menu {
                if !request_types.iter().any(|known| &known.name == name) {
                    return Err(PolicyError::UnknownRequestType {
                        service_line: line.name.clone(),
                        request_type: name.clone(),
                    });
                }
            }
        }

        let (fallbacks, numbered_lines): (Vec<ServiceLine>, Vec<ServiceLine>) = service_lines
            .into_iter()
            .partition(|line| line.numbers.is_empty());
        let mut fallbacks = fallbacks.into_iter();
        let fallback_line = fallbacks.next().ok_or(PolicyError::NoFallbackLine)?;
        if let Some(second) = fallbacks.next() {
            return Err(PolicyError::SeveralFallbackLines {
                first: fallback_line.name,
                second: second.name,
            });
        }

        Ok(Policy {
            version,
            levels,
            request_types,
            numbered_lines,
            fallback_line,
        })
    }

    /// Returns `policy.version`.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Returns the levels from lowest to highest.
    #[must_use]
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Returns the request types in config order.
    #[must_use]
    pub fn request_types(&self) -> &[RequestType] {
        &self.request_types
    }

    /// Returns every service line, the fallback line last.
    pub fn service_lines(&self) -> impl Iterator<Item = &ServiceLine> {
        self.numbered_lines
            .iter()
            .chain(std::iter::once(&self.fallback_line))
    }

    /// Returns the service line of a dialled number in E.164 (normalise it
    /// with `verify::to_e164` first). Unknown numbers and calls without a
    /// dialled number get the fallback line.
    #[must_use]
    pub fn service_line_for(&self, dialled: Option<&str>) -> &ServiceLine {
        let Some(dialled) = dialled else {
            return &self.fallback_line;
        };
        self.numbered_lines
            .iter()
            .find(|line| line.numbers.iter().any(|number| number == dialled))
            .unwrap_or(&self.fallback_line)
    }

    /// Returns the request type called `name`.
    #[must_use]
    pub fn request_type(&self, name: &str) -> Option<&RequestType> {
        self.request_types.iter().find(|known| known.name == name)
    }

    /// Returns the level called `name`.
    #[must_use]
    pub fn level(&self, name: &str) -> Option<&Level> {
        self.levels.iter().find(|level| level.name == name)
    }

    /// Returns the level that the request type called `request_type`
    /// requires.
    #[must_use]
    pub fn level_for(&self, request_type: &str) -> Option<&Level> {
        self.level(&self.request_type(request_type)?.level)
    }
}

/// Result of one factor in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorOutcome {
    /// Whether the factor passed.
    pub passed: bool,
    /// Why, in a few words for the audit record ("matched", "3 wrong
    /// entries", "no mobile registered"). Never contains entered digits.
    pub reason: String,
}

/// The factors decided so far in one call, with their reasons, in the order
/// they were decided. A factor that is not recorded is still open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FactorOutcomes {
    /// One entry per decided factor.
    entries: Vec<(Factor, FactorOutcome)>,
}

impl FactorOutcomes {
    /// Creates an empty record: no factor decided.
    #[must_use]
    pub fn new() -> FactorOutcomes {
        FactorOutcomes::default()
    }

    /// Records the outcome of `factor`, replacing an earlier one.
    pub fn record(&mut self, factor: Factor, passed: bool, reason: impl Into<String>) {
        let outcome = FactorOutcome {
            passed,
            reason: reason.into(),
        };
        match self.entries.iter_mut().find(|(known, _)| *known == factor) {
            Some((_, existing)) => *existing = outcome,
            None => self.entries.push((factor, outcome)),
        }
    }

    /// Records that `factor` passed.
    pub fn pass(&mut self, factor: Factor, reason: impl Into<String>) {
        self.record(factor, true, reason);
    }

    /// Records that `factor` failed for the rest of the call.
    pub fn fail(&mut self, factor: Factor, reason: impl Into<String>) {
        self.record(factor, false, reason);
    }

    /// Returns the outcome of `factor`, or `None` while it is open.
    #[must_use]
    pub fn get(&self, factor: Factor) -> Option<&FactorOutcome> {
        self.entries
            .iter()
            .find(|(known, _)| *known == factor)
            .map(|(_, outcome)| outcome)
    }

    /// Returns whether `factor` passed.
    #[must_use]
    pub fn passed(&self, factor: Factor) -> bool {
        self.get(factor).is_some_and(|outcome| outcome.passed)
    }

    /// Returns whether `factor` failed.
    #[must_use]
    pub fn failed(&self, factor: Factor) -> bool {
        self.get(factor).is_some_and(|outcome| !outcome.passed)
    }

    /// Returns the decided factors in the order they were first recorded.
    pub fn iter(&self) -> impl Iterator<Item = (Factor, &FactorOutcome)> {
        self.entries
            .iter()
            .map(|(factor, outcome)| (*factor, outcome))
    }
}

/// Next action of the call flow for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum NextStep {
    /// Ask the caller for this factor.
    Ask(Factor),
    /// The rule is reached.
    Satisfied,
    /// The rule cannot be reached in this call: a required factor failed or
    /// the customer has no data for it, or every alternative is used up.
    Unsatisfiable,
}

/// Decides what to ask next for `rule`. Call it after every recorded
/// outcome. `available` returns whether the customer has the data a factor
/// needs (no registered mobile means no `sms_otp`).
///
/// `all_of` factors are asked in order. Once they all passed, the first
/// `any_of` factor that is available and not yet failed is asked, unless one
/// already passed. A caller ID match is never asked: it is recorded at the
/// start of the call, so while it is open or failed it only counts as not
/// passed.
pub fn next_factor(
    rule: &Rule,
    outcome: &FactorOutcomes,
    available: &dyn Fn(Factor) -> bool,
) -> NextStep {
    for factor in &rule.all_of {
        let factor = *factor;
        if outcome.passed(factor) {
            continue;
        }
        if factor == Factor::CallerIdMatch || outcome.failed(factor) || !available(factor) {
            return NextStep::Unsatisfiable;
        }
        return NextStep::Ask(factor);
    }

    if rule.any_of.is_empty() || rule.any_of.iter().any(|f| outcome.passed(*f)) {
        return NextStep::Satisfied;
    }
    rule.any_of
        .iter()
        .copied()
        .find(|factor| {
            *factor != Factor::CallerIdMatch && !outcome.failed(*factor) && available(*factor)
        })
        .map_or(NextStep::Unsatisfiable, NextStep::Ask)
}

/// Returns the name of the highest level `outcomes` reach: the last level in
/// config order whose rule is satisfied, or `None` when no level is reached
/// (the token's `acr` is then `unverified`).
#[must_use]
pub fn highest_level_reached(policy: &Policy, outcomes: &FactorOutcomes) -> Option<String> {
    policy
        .levels()
        .iter()
        .rev()
        .find(|level| level.rule.is_satisfied(outcomes))
        .map(|level| level.name.clone())
}

/// Returns the RFC 8176 authentication method references (`amr`) of the
/// passed factors, sorted and without repeats:
///
/// - `kba` for a passed contract number, date of birth, postcode or IBAN
///   digits;
/// - `sms` and `otp` for a passed one-time code by SMS;
/// - `tel` for a passed caller ID match, but only when `rule` (the rule of
///   the level the token claims) names `caller_id_match`, because otherwise
///   it did not contribute;
/// - `mfa` when both `kba` and `otp` are present: a knowledge and a
///   possession factor.
///
/// The rule is a parameter because whether the caller ID counted depends on
/// the level, which the outcomes alone do not tell.
#[must_use]
pub fn amr(outcomes: &FactorOutcomes, rule: &Rule) -> Vec<String> {
    let mut methods: Vec<&str> = Vec::new();

    let knowledge = outcomes
        .iter()
        .any(|(factor, outcome)| outcome.passed && factor.is_knowledge());
    let one_time_code = outcomes.passed(Factor::SmsOtp);
    if knowledge {
        methods.push("kba");
    }
    if one_time_code {
        methods.push("sms");
        methods.push("otp");
    }
    if outcomes.passed(Factor::CallerIdMatch) && rule.uses(Factor::CallerIdMatch) {
        methods.push("tel");
    }
    if knowledge && one_time_code {
        methods.push("mfa");
    }

    methods.sort_unstable();
    methods.into_iter().map(str::to_string).collect()
}

/// Explains in plain English what a call of request type `name` needs: the
/// level and its factors, the entry formats, the one-time code and lockout
/// limits, and where the call goes. This is the text of
/// `ivr-verify policy explain --request-type NAME`. Returns an error that
/// lists the known request types when `name` is unknown.
pub fn explain_request_type(config: &Config, name: &str) -> Result<String, String> {
    let policy = &config.policy;
    let Some(request_type) = policy.request_type(name) else {
        let known: Vec<&str> = policy
            .request_types()
            .iter()
            .map(|known| known.name.as_str())
            .collect();
        return Err(format!(
            "unknown request type `{name}`; known request types are {}",
            known.join(", ")
        ));
    };
    let Some(level) = policy.level(&request_type.level) else {
        return Err(format!(
            "request type `{name}` requires level `{}`, which is not defined",
            request_type.level
        ));
    };

    let mut text = String::new();
    let mut line = |content: String| {
        text.push_str(&content);
        text.push('\n');
    };

    line(format!(
        "Request type `{name}` (policy version {})",
        policy.version()
    ));
    line(format!("Requires level `{}`, reached when:", level.name));
    line(describe_rule(&level.rule));

    let offered: Vec<String> = policy
        .service_lines()
        .filter_map(|service_line| {
            let position = service_line.menu.iter().position(|item| item == name)?;
            Some(format!("{} (key {})", service_line.name, position + 1))
        })
        .collect();
    if offered.is_empty() {
        line("Offered on no service line menu.".to_string());
    } else {
        line(format!("Offered on service lines: {}.", offered.join(", ")));
    }
    line(format!(
        "Verified calls are referred to {}.",
        request_type.agent_queue_uri
    ));

    line(String::new());
    line("What the caller enters:".to_string());
    let mut factors: Vec<Factor> = level.rule.all_of.clone();
    factors.extend(level.rule.any_of.iter().copied());
    for factor in factors {
        line(format!("- {}", describe_entry(config, factor)));
    }
    line("A wrongly formatted entry is rejected without costing an attempt.".to_string());
    line(
        "A factor the customer has no data for (such as sms_otp without a registered mobile) is skipped when it is an alternative, and makes the level unreachable when it is required."
            .to_string(),
    );

    line(String::new());
    let lockout = &config.lockout;
    line(format!(
        "Lockout: at most {} failed attempts per contract number in {} s, {} per customer in {} s, and {} per calling number in {} s.",
        lockout.contract_limit,
        lockout.contract_window.as_secs(),
        lockout.customer_limit,
        lockout.customer_window.as_secs(),
        lockout.calling_number_limit,
        lockout.calling_number_window.as_secs()
    ));

    let levels: Vec<&str> = policy.levels().iter().map(|l| l.name.as_str()).collect();
    line(format!(
        "Levels from lowest to highest: {}. A call that does not reach `{}` goes to an agent marked with the highest level it did reach, or `unverified`.",
        levels.join(", "),
        level.name
    ));
    Ok(text)
}

/// Describes a rule as one or two indented lines.
fn describe_rule(rule: &Rule) -> String {
    let names = |factors: &[Factor]| -> String {
        factors
            .iter()
            .map(|factor| factor.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !rule.all_of.is_empty() {
        parts.push(format!("  all of: {}", names(&rule.all_of)));
    }
    if !rule.any_of.is_empty() {
        parts.push(format!("  and at least one of: {}", names(&rule.any_of)));
    }
    parts.join("\n")
}

/// Describes how the caller provides one factor.
fn describe_entry(config: &Config, factor: Factor) -> String {
    let factors = &config.factors;
    match factor {
        Factor::ContractNumber => format!(
            "contract_number: {} to {} digits then #, check digit {}",
            factors.contract_digits.start(),
            factors.contract_digits.end(),
            factors.contract_check_digit.name()
        ),
        Factor::DateOfBirth => {
            "date_of_birth: 8 digits DDMMYYYY then #, a real date from 1900 up to today".to_string()
        }
        Factor::Postcode => {
            "postcode: the 4 digits of the postcode, then the house number without letters, then #"
                .to_string()
        }
        Factor::IbanLastDigits => format!(
            "iban_last_digits: the last {} digits of the IBAN then #; the full IBAN is never asked",
            factors.iban_last_digits
        ),
        Factor::SmsOtp => {
            let otp = &config.otp;
            format!(
                "sms_otp: a {}-digit code sent by SMS to the registered mobile, valid {} s, {} entries per code, at most {} codes per {} s",
                super::factors::OTP_DIGITS,
                otp.lifetime.as_secs(),
                otp.max_entries,
                otp.max_sends,
                otp.send_window.as_secs()
            )
        }
        Factor::CallerIdMatch => {
            "caller_id_match: not asked; the calling number is compared with the registered numbers at the start of the call"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests;
