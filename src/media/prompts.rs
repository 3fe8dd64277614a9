//! Recorded prompts: loaded once at start-up from `prompts/<language>/<id>.wav`
//! and kept as ready-to-send G.711 frames shared by all calls.
//!
//! `prompts/catalog.toml` contains the text of every prompt and
//! `prompts/generate` turns it into the WAV files. The service itself only
//! reads the WAV files, so it needs no speech engine.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::media::g711::Codec;
use crate::media::{FRAME_DURATION, SAMPLES_PER_FRAME, SAMPLE_RATE_HZ};

pub use crate::media::Frame;

/// Maximum prompt length accepted, in seconds. The longest prompt in the
/// catalog is under 10 s, so a longer file is most likely the wrong file. The limit also
/// bounds memory: each second costs 16 KB of frames (both codecs).
pub const MAX_PROMPT_SECONDS: u32 = 60;

/// Identifier of one prompt. The file stem of its WAV file is
/// [`PromptId::file_stem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptId {
    /// Greeting at the start of the call.
    Welcome,
    /// Why the caller is asked to identify: to protect their contract.
    WhyWeAsk,
    /// What the service never asks for (full account number, card number,
    /// password, BSN), as a defence against phishing calls.
    WhatWeNeverAsk,
    /// Request to type the contract number followed by the hash key.
    EnterContractNumber,
    /// The number typed was not recognised; try again.
    NotRecognised,
    /// Nothing was typed in time; the request is repeated.
    NoInput,
    /// Verified; the call is being connected to an agent.
    ThankYouConnecting,
    /// Verification failed; an agent will help further.
    CouldNotVerify,
    /// The transfer to an agent failed; an apology and other ways to get help.
    TransferFailed,
    /// Farewell before the service hangs up.
    Goodbye,
    /// Question before the menu of request types.
    ChooseRequestType,
    /// The key pressed in the menu is not one of the options.
    InvalidChoice,
    /// Why one more check follows: this request needs a higher level.
    ExtraCheckNeeded,
    /// Request to type the date of birth as DDMMYYYY.
    EnterDateOfBirth,
    /// Request to type the postcode digits and house number.
    EnterPostcode,
    /// Why a code is sent by SMS: the request has financial effect.
    WhySmsCode,
    /// The code was sent to the mobile number ending in (digits follow).
    OtpSentTo,
    /// Request to type the six-digit code; star sends a new one.
    EnterOtp,
    /// No code could be sent (limit reached or gateway failure).
    OtpNotSent,
    /// The entry has the wrong format or check digit; it cost no attempt.
    EntryInvalid,
    /// Too many failed attempts across calls: verification is paused, with alternatives.
    VerificationPaused,
    /// The store cannot be reached, so nothing can be checked now.
    SystemUnavailable,
}

impl PromptId {
    /// Number of prompts.
    pub const COUNT: usize = 22;

    /// Every prompt, in the order of the declaration.
    pub const ALL: [PromptId; PromptId::COUNT] = [
        PromptId::Welcome,
        PromptId::WhyWeAsk,
        PromptId::WhatWeNeverAsk,
        PromptId::EnterContractNumber,
        PromptId::NotRecognised,
        PromptId::NoInput,
        PromptId::ThankYouConnecting,
        PromptId::CouldNotVerify,
        PromptId::TransferFailed,
        PromptId::Goodbye,
        PromptId::ChooseRequestType,
        PromptId::InvalidChoice,
        PromptId::ExtraCheckNeeded,
        PromptId::EnterDateOfBirth,
        PromptId::EnterPostcode,
        PromptId::WhySmsCode,
        PromptId::OtpSentTo,
        PromptId::EnterOtp,
        PromptId::OtpNotSent,
        PromptId::EntryInvalid,
        PromptId::VerificationPaused,
        PromptId::SystemUnavailable,
    ];

    /// Returns the snake_case name used as the catalog key and WAV file stem.
    pub fn file_stem(self) -> &'static str {
        match self {
            PromptId::Welcome => "welcome",
            PromptId::WhyWeAsk => "why_we_ask",
            PromptId::WhatWeNeverAsk => "what_we_never_ask",
            PromptId::EnterContractNumber => "enter_contract_number",
            PromptId::NotRecognised => "not_recognised",
            PromptId::NoInput => "no_input",
            PromptId::ThankYouConnecting => "thank_you_connecting",
            PromptId::CouldNotVerify => "could_not_verify",
            PromptId::TransferFailed => "transfer_failed",
            PromptId::Goodbye => "goodbye",
            PromptId::ChooseRequestType => "choose_request_type",
            PromptId::InvalidChoice => "invalid_choice",
            PromptId::ExtraCheckNeeded => "extra_check_needed",
            PromptId::EnterDateOfBirth => "enter_date_of_birth",
            PromptId::EnterPostcode => "enter_postcode",
            PromptId::WhySmsCode => "why_sms_code",
            PromptId::OtpSentTo => "otp_sent_to",
            PromptId::EnterOtp => "enter_otp",
            PromptId::OtpNotSent => "otp_not_sent",
            PromptId::EntryInvalid => "entry_invalid",
            PromptId::VerificationPaused => "verification_paused",
            PromptId::SystemUnavailable => "system_unavailable",
        }
    }

    /// Returns the position of this id in [`PromptId::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

/// Language a caller hears. Dutch is the default; English is the second
/// language.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Dutch.
    #[default]
    Nl,
    /// English.
    En,
}

impl Language {
    /// Every language that has prompts.
    pub const ALL: [Language; 2] = [Language::Nl, Language::En];

    /// Returns the ISO 639-1 code, which is also the prompt subdirectory.
    pub fn code(self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::En => "en",
        }
    }

    /// Returns the position of this language in [`Language::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Error for a language code other than `nl` or `en`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {value:?}; use \"nl\" or \"en\"")]
pub struct ParseLanguageError {
    /// The rejected value.
    pub value: String,
}

impl FromStr for Language {
    type Err = ParseLanguageError;

    /// Parses `nl` or `en`, ignoring ASCII case.
    fn from_str(value: &str) -> Result<Language, ParseLanguageError> {
        Language::ALL
            .into_iter()
            .find(|language| language.code().eq_ignore_ascii_case(value))
            .ok_or_else(|| ParseLanguageError {
                value: value.to_owned(),
            })
    }
}

/// Errors from loading prompt files. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The WAV file for a prompt does not exist.
    #[error("prompt file {path} is missing; run prompts/generate or copy it from the release")]
    Missing {
        /// Expected location of the file.
        path: PathBuf,
    },

    /// The file exists but is not a readable WAV file.
    #[error("prompt file {path} is not a valid WAV file: {source}")]
    InvalidWav {
        /// The file.
        path: PathBuf,
        /// Error reported by the WAV decoder.
        source: hound::Error,
    },

    /// The sample rate is not 8000 Hz.
    #[error("prompt file {path} has a sample rate of {sample_rate} Hz; convert it to 8000 Hz")]
    WrongSampleRate {
        /// The file.
        path: PathBuf,
        /// Sample rate found in the header.
        sample_rate: u32,
    },

    /// The file has more than one channel.
    #[error("prompt file {path} has {channels} channels; convert it to mono")]
    WrongChannelCount {
        /// The file.
        path: PathBuf,
        /// Channel count found in the header.
        channels: u16,
    },

    /// The samples are not 16-bit integers.
    #[error("prompt file {path} has {bits}-bit {format} samples; convert it to 16-bit signed integer PCM")]
    WrongSampleFormat {
        /// The file.
        path: PathBuf,
        /// Bits per sample found in the header.
        bits: u16,
        /// `integer` or `float`.
        format: &'static str,
    },

    /// The file contains no samples.
    #[error("prompt file {path} contains no audio")]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// The file is longer than [`MAX_PROMPT_SECONDS`].
    #[error("prompt file {path} is {seconds} s long, more than the maximum of {max} s")]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Length of the file in whole seconds.
        seconds: u32,
        /// The maximum, [`MAX_PROMPT_SECONDS`].
        max: u32,
    },
}

/// One prompt decoded into 20 ms frames for both G.711 codecs.
#[derive(Debug)]
pub struct Prompt {
    /// File stem of this prompt (a [`PromptId::file_stem`] or a named
    /// prompt such as `digit_7`), for logs.
    name: Arc<str>,
    /// Language of the recording.
    language: Language,
    /// A-law frames; the last frame is padded with A-law silence.
    pcma: Vec<Frame>,
    /// µ-law frames; the last frame is padded with µ-law silence.
    pcmu: Vec<Frame>,
}

impl Prompt {
    /// Encodes 8 kHz 16-bit samples into frames for both codecs.
    pub fn from_samples(name: &str, language: Language, samples: &[i16]) -> Prompt {
        Prompt {
            name: Arc::from(name),
            language,
            pcma: encode_frames(Codec::Pcma, samples),
            pcmu: encode_frames(Codec::Pcmu, samples),
        }
    }

    /// Returns the prompt's file stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the prompt's language.
    pub fn language(&self) -> Language {
        self.language
    }

    /// Returns the frames for `codec`, each one RTP payload of 20 ms.
    pub fn frames(&self, codec: Codec) -> &[Frame] {
        match codec {
            Codec::Pcma => &self.pcma,
            Codec::Pcmu => &self.pcmu,
        }
    }

    /// Returns the playing time, a whole number of frames.
    pub fn duration(&self) -> Duration {
        let frames = u32::try_from(self.pcma.len()).unwrap_or(u32::MAX);
        FRAME_DURATION * frames
    }
}

/// Splits samples into frames, padding the last one with silence.
fn encode_frames(codec: Codec, samples: &[i16]) -> Vec<Frame> {
    samples
        .chunks(SAMPLES_PER_FRAME)
        .map(|chunk| {
            let mut frame = [codec.silence_byte(); SAMPLES_PER_FRAME];
            for (slot, sample) in frame.iter_mut().zip(chunk) {
                *slot = codec.encode(*sample);
            }
            frame
        })
        .collect()
}

/// Every prompt in every language, decoded once and shared by all calls.
#[derive(Debug)]
pub struct PromptLibrary {
    /// Prompts indexed by language, then by prompt id. Both indices come
    /// from the enums, so every lookup is in range.
    prompts: [[Arc<Prompt>; PromptId::COUNT]; 2],

    /// Every other WAV file of each language folder, by file stem: menu
    /// options named after request types (`request_type_<name>`), `press_<n>`,
    /// `digit_<n>` and other prompts that configuration refers to by name.
    named: [HashMap<String, Arc<Prompt>>; 2],
}

impl PromptLibrary {
    /// Loads `<dir>/<language>/<id>.wav` for every language and prompt.
    ///
    /// Returns the first problem found; [`PromptLibrary::problems`] lists
    /// all of them.
    pub fn load(dir: &Path) -> Result<PromptLibrary, PromptError> {
        Self::load_all(dir).map_err(|mut problems| problems.swap_remove(0))
    }

    /// Checks every prompt file under `dir` and returns every problem found,
    /// or an empty list when [`PromptLibrary::load`] would succeed. Meant for
    /// `check-config`, which reports all problems at once.
    pub fn problems(dir: &Path) -> Vec<PromptError> {
        Self::load_all(dir).err().unwrap_or_default()
    }

    /// Returns the prompt for `language` and `id`.
    pub fn get(&self, language: Language, id: PromptId) -> &Arc<Prompt> {
        &self.prompts[language.index()][id.index()]
    }

    /// Returns the named prompt `<dir>/<language>/<name>.wav`, if it was
    /// there at start-up.
    pub fn get_named(&self, language: Language, name: &str) -> Option<&Arc<Prompt>> {
        self.named[language.index()].get(name)
    }

    /// Returns the files `<dir>/<language>/<name>.wav` that are missing, in
    /// the order of [`Language::ALL`]. The list is empty when every language
    /// has the named prompt. `check-config` uses it for prompts that
    /// configuration refers to.
    pub fn missing_named(dir: &Path, name: &str) -> Vec<PathBuf> {
        Language::ALL
            .iter()
            .map(|language| dir.join(language.code()).join(format!("{name}.wav")))
            .filter(|path| !path.is_file())
            .collect()
    }

    /// Loads every file, collecting the problems instead of stopping at the
    /// first one. The error list is never empty.
    fn load_all(dir: &Path) -> Result<PromptLibrary, Vec<PromptError>> {
        let mut problems = Vec::new();
        let mut loaded: Vec<Vec<Arc<Prompt>>> = Vec::with_capacity(Language::ALL.len());

        for language in Language::ALL {
            let mut prompts = Vec::with_capacity(PromptId::COUNT);
            for id in PromptId::ALL {
                let path = prompt_path(dir, language, id);
                match read_samples(&path) {
                    Ok(samples) => prompts.push(Arc::new(Prompt::from_samples(
                        id.file_stem(),
                        language,
                        &samples,
                    ))),
                    Err(problem) => problems.push(problem),
                }
            }
            loaded.push(prompts);
        }

        if !problems.is_empty() {
            return Err(problems);
        }

        let named = [
            load_named(dir, Language::Nl, &mut problems),
            load_named(dir, Language::En, &mut problems),
        ];
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut by_language = loaded
            .into_iter()
            .map(<[Arc<Prompt>; PromptId::COUNT]>::try_from);
        match (by_language.next(), by_language.next()) {
            (Some(Ok(nl)), Some(Ok(en))) => Ok(PromptLibrary {
                prompts: [nl, en],
                named,
            }),
            // Every file loaded, so each language has all COUNT prompts.
            _ => unreachable!("a language lacks prompts although none failed"),
        }
    }
}

/// Loads every WAV file of one language folder that is not a fixed
/// prompt, keyed by file stem.
fn load_named(
    dir: &Path,
    language: Language,
    problems: &mut Vec<PromptError>,
) -> HashMap<String, Arc<Prompt>> {
    let mut named = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join(language.code())) else {
        return named;
    };

    for entry in entries.flatten() {
        let path = entry.path();
        let is_wav = path.extension().is_some_and(|extension| extension == "wav");
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if !is_wav || PromptId::ALL.iter().any(|id| id.file_stem() == stem) {
            continue;
        }

        match read_samples(&path) {
            Ok(samples) => {
                let prompt = Prompt::from_samples(stem, language, &samples);
                named.insert(stem.to_owned(), Arc::new(prompt));
            }
            Err(problem) => problems.push(problem),
        }
    }
    named
}

/// Returns the location of one prompt's WAV file.
pub fn prompt_path(dir: &Path, language: Language, id: PromptId) -> PathBuf {
    dir.join(language.code())
        .join(format!("{}.wav", id.file_stem()))
}

/// Reads and validates one WAV file, returning its samples.
fn read_samples(path: &Path) -> Result<Vec<i16>, PromptError> {
    if !path.is_file() {
        return Err(PromptError::Missing {
            path: path.to_path_buf(),
        });
    }

    let invalid = |source| PromptError::InvalidWav {
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(invalid)?;

    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE_HZ {
        return Err(PromptError::WrongSampleRate {
            path: path.to_path_buf(),
            sample_rate: spec.sample_rate,
        });
    }
    if spec.channels != 1 {
        return Err(PromptError::WrongChannelCount {
            path: path.to_path_buf(),
            channels: spec.channels,
        });
    }
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        let format = match spec.sample_format {
            hound::SampleFormat::Int => "integer",
            hound::SampleFormat::Float => "float",
        };
        return Err(PromptError::WrongSampleFormat {
            path: path.to_path_buf(),
            bits: spec.bits_per_sample,
            format,
        });
    }

    // The header's length is checked before reading, so an oversized file
    // costs no memory.
    let seconds = reader.duration() / SAMPLE_RATE_HZ;
    if seconds >= MAX_PROMPT_SECONDS {
        return Err(PromptError::TooLong {
            path: path.to_path_buf(),
            seconds,
            max: MAX_PROMPT_SECONDS,
        });
    }

    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, hound::Error>>()
        .map_err(invalid)?;
    if samples.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the directory of the committed prompts.
    fn shipped_prompts_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }

    fn write_wav(path: &Path, spec: hound::WavSpec, samples: &[i16]) {
        std::fs::create_dir_all(path.parent().expect("path has a parent")).expect("create dir");
        let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
        for sample in samples {
            writer.write_sample(*sample).expect("write sample");
        }
        writer.finalize().expect("finalize WAV");
    }

    fn valid_spec() -> hound::WavSpec {
        hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    /// Fills `dir` with a valid 170-sample WAV for every prompt.
    fn write_complete_set(dir: &Path) {
        let samples: Vec<i16> = (0..170).map(|i| (i * 100) as i16).collect();
        for language in Language::ALL {
            for id in PromptId::ALL {
                write_wav(&prompt_path(dir, language, id), valid_spec(), &samples);
            }
        }
    }

    #[test]
    fn shipped_prompts_load() {
        let library = PromptLibrary::load(&shipped_prompts_dir()).expect("shipped prompts load");
        for language in Language::ALL {
            for id in PromptId::ALL {
                let prompt = library.get(language, id);
                assert_eq!(prompt.name(), id.file_stem());
                assert_eq!(prompt.language(), language);
                assert!(
                    prompt.duration() > Duration::from_millis(500),
                    "{language}/{} is too short to be speech",
                    id.file_stem()
                );
                assert_eq!(
                    prompt.frames(Codec::Pcma).len(),
                    prompt.frames(Codec::Pcmu).len()
                );

                // Speech has frames well away from silence.
                let loud_frames = prompt
                    .frames(Codec::Pcmu)
                    .iter()
                    .filter(|frame| {
                        frame
                            .iter()
                            .any(|code| Codec::Pcmu.decode(*code).abs() > 4000)
                    })
                    .count();
                assert!(
                    loud_frames > 5,
                    "{language}/{} sounds silent",
                    id.file_stem()
                );
            }
        }
    }

    #[test]
    fn shipped_catalog_lists_every_prompt() {
        let text = std::fs::read_to_string(shipped_prompts_dir().join("catalog.toml"))
            .expect("catalog.toml is readable");
        let catalog: toml::Table = toml::from_str(&text).expect("catalog.toml is valid TOML");
        for (name, entry) in &catalog {
            assert!(entry.is_table(), "[{name}] is a table");
            assert_eq!(
                PromptLibrary::missing_named(&shipped_prompts_dir(), name),
                Vec::<PathBuf>::new(),
                "catalog entry [{name}] has a WAV file in every language; run prompts/generate"
            );
        }
        for id in PromptId::ALL {
            let entry = catalog
                .get(id.file_stem())
                .and_then(|value| value.as_table())
                .unwrap_or_else(|| panic!("catalog lacks [{}]", id.file_stem()));
            for language in Language::ALL {
                let text = entry.get(language.code()).and_then(|value| value.as_str());
                assert!(
                    text.is_some_and(|text| !text.trim().is_empty()),
                    "[{}] lacks {language} text",
                    id.file_stem()
                );
            }
        }
    }

    #[test]
    fn missing_named_lists_each_language() {
        let dir = tempfile::tempdir().expect("temp dir");
        let samples = [1000i16; 170];
        write_wav(
            &dir.path().join("nl/request_type_x.wav"),
            valid_spec(),
            &samples,
        );

        assert_eq!(
            PromptLibrary::missing_named(dir.path(), "request_type_x"),
            vec![dir.path().join("en/request_type_x.wav")]
        );
        assert_eq!(
            PromptLibrary::missing_named(dir.path(), "request_type_y"),
            vec![
                dir.path().join("nl/request_type_y.wav"),
                dir.path().join("en/request_type_y.wav"),
            ]
        );
    }

    #[test]
    fn frames_are_padded_with_silence() {
        let samples = [1000i16; 170];
        let prompt = Prompt::from_samples("welcome", Language::Nl, &samples);
        for codec in Codec::ALL {
            let frames = prompt.frames(codec);
            assert_eq!(frames.len(), 2, "{codec:?}: 170 samples make two frames");
            assert!(frames[0].iter().all(|code| *code == codec.encode(1000)));
            assert!(frames[1][..10]
                .iter()
                .all(|code| *code == codec.encode(1000)));
            assert!(frames[1][10..]
                .iter()
                .all(|code| *code == codec.silence_byte()));
        }
        assert_eq!(prompt.duration(), Duration::from_millis(40));
    }

    #[test]
    fn load_reports_missing_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        write_complete_set(dir.path());
        let missing = prompt_path(dir.path(), Language::En, PromptId::Goodbye);
        std::fs::remove_file(&missing).expect("remove one prompt");

        let error = PromptLibrary::load(dir.path()).expect_err("a prompt is missing");
        assert!(matches!(&error, PromptError::Missing { path } if *path == missing));
        assert!(error.to_string().contains("en/goodbye.wav"), "{error}");
    }

    #[test]
    fn problems_lists_every_bad_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        write_complete_set(dir.path());
        let samples = [0i16; 400];

        let wrong_rate = hound::WavSpec {
            sample_rate: 16000,
            ..valid_spec()
        };
        write_wav(
            &prompt_path(dir.path(), Language::Nl, PromptId::Welcome),
            wrong_rate,
            &samples,
        );

        let stereo = hound::WavSpec {
            channels: 2,
            ..valid_spec()
        };
        write_wav(
            &prompt_path(dir.path(), Language::Nl, PromptId::NoInput),
            stereo,
            &samples,
        );

        let eight_bit = hound::WavSpec {
            bits_per_sample: 8,
            ..valid_spec()
        };
        let path = prompt_path(dir.path(), Language::En, PromptId::WhyWeAsk);
        let mut writer = hound::WavWriter::create(&path, eight_bit).expect("create WAV");
        writer.write_sample(0i8).expect("write sample");
        writer.finalize().expect("finalize WAV");

        write_wav(
            &prompt_path(dir.path(), Language::En, PromptId::Goodbye),
            valid_spec(),
            &[],
        );

        std::fs::write(
            prompt_path(dir.path(), Language::En, PromptId::NoInput),
            b"not a WAV",
        )
        .expect("write garbage");

        let problems = PromptLibrary::problems(dir.path());
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(matches!(
            problems[0],
            PromptError::WrongSampleRate {
                sample_rate: 16000,
                ..
            }
        ));
        assert!(matches!(
            problems[1],
            PromptError::WrongChannelCount { channels: 2, .. }
        ));
        assert!(matches!(
            problems[2],
            PromptError::WrongSampleFormat { bits: 8, .. }
        ));
        assert!(matches!(problems[3], PromptError::InvalidWav { .. }));
        assert!(matches!(problems[4], PromptError::Empty { .. }));
        assert!(problems[0].to_string().contains("nl/welcome.wav"));
    }

    #[test]
    fn load_rejects_overlong_prompt() {
        let dir = tempfile::tempdir().expect("temporary directory");
        write_complete_set(dir.path());
        let long = vec![0i16; (SAMPLE_RATE_HZ * MAX_PROMPT_SECONDS) as usize];
        write_wav(
            &prompt_path(dir.path(), Language::Nl, PromptId::Goodbye),
            valid_spec(),
            &long,
        );

        let error = PromptLibrary::load(dir.path()).expect_err("prompt too long");
        assert!(
            matches!(error, PromptError::TooLong { seconds: 60, .. }),
            "{error}"
        );
    }

    #[test]
    fn complete_set_loads() {
        let dir = tempfile::tempdir().expect("temporary directory");
        write_complete_set(dir.path());
        assert!(PromptLibrary::problems(dir.path()).is_empty());
        let library = PromptLibrary::load(dir.path()).expect("complete set loads");
        let prompt = library.get(Language::En, PromptId::NotRecognised);
        assert_eq!(prompt.frames(Codec::Pcma).len(), 2);
    }

    #[test]
    fn language_parses_codes() {
        assert_eq!("nl".parse::<Language>(), Ok(Language::Nl));
        assert_eq!("EN".parse::<Language>(), Ok(Language::En));
        let error = "de".parse::<Language>().expect_err("German has no prompts");
        assert_eq!(error.value, "de");
        assert_eq!(Language::default(), Language::Nl);
    }

    #[test]
    fn prompt_ids_are_in_index_order() {
        for (position, id) in PromptId::ALL.into_iter().enumerate() {
            assert_eq!(id.index(), position);
        }
        for (position, language) in Language::ALL.into_iter().enumerate() {
            assert_eq!(language.index(), position);
        }
    }
}
