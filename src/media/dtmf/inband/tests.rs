use super::*;
use std::path::Path;

/// Low- and high-group frequency of a key, from the keypad table.
fn key_frequencies(key: char) -> (f64, f64) {
    for (row, keys) in KEYPAD.iter().enumerate() {
        if let Some(column) = keys.iter().position(|&k| k == key) {
            return (LOW_GROUP_HZ[row], HIGH_GROUP_HZ[column]);
        }
    }
    panic!("{key} is not a keypad key");
}

/// Peak amplitude, in 16-bit linear units, of a sine at `dbm0`.
fn amplitude(dbm0: f64) -> f64 {
    DBM0_RMS * 2f64.sqrt() * 10f64.powf(dbm0 / 20.0)
}

/// Parameters of one generated key tone.
#[derive(Clone, Copy)]
struct Tone {
    key: char,
    duration_ms: u32,
    /// Level of the low-group tone in dBm0.
    low_dbm0: f64,
    /// High-group level minus low-group level, in dB.
    twist_db: f64,
    /// Relative frequency offsets, for example 0.015 for +1.5 %.
    low_offset: f64,
    high_offset: f64,
}

impl Tone {
    fn new(key: char, duration_ms: u32) -> Tone {
        Tone {
            key,
            duration_ms,
            low_dbm0: -10.0,
            twist_db: 2.0,
            low_offset: 0.0,
            high_offset: 0.0,
        }
    }

    /// Appends the tone's samples, starting at phase `phase`.
    fn append(self, signal: &mut Vec<f64>, phase: f64) {
        let (low, high) = key_frequencies(self.key);
        let low_hz = low * (1.0 + self.low_offset);
        let high_hz = high * (1.0 + self.high_offset);
        let low_amplitude = amplitude(self.low_dbm0);
        let high_amplitude = amplitude(self.low_dbm0 + self.twist_db);
        let samples = self.duration_ms as usize * 8;
        for n in 0..samples {
            let t = n as f64 / 8000.0;
            signal.push(
                low_amplitude * (2.0 * PI * low_hz * t + phase).sin()
                    + high_amplitude * (2.0 * PI * high_hz * t + 2.0 * phase).sin(),
            );
        }
    }
}

fn silence(signal: &mut Vec<f64>, ms: u32) {
    signal.extend(std::iter::repeat_n(0.0, ms as usize * 8));
}

/// Rounds to 16 bits and passes the signal through G.711 A-law, as a
/// caller's audio arrives.
fn to_alaw(signal: &[f64]) -> Vec<u8> {
    signal
        .iter()
        .map(|&s| Codec::Pcma.encode(s.round().clamp(-32768.0, 32767.0) as i16))
        .collect()
}

/// Feeds G.711 A-law audio to a new detector in packets of `frame_ms` and
/// returns the keys with their times relative to the start of the audio.
fn detect_timed(alaw: &[u8], frame_ms: usize) -> Vec<(char, Duration)> {
    let mut detector = InbandDetector::new();
    let start = Instant::now();
    let mut events = Vec::new();
    let frame_len = frame_ms * 8;
    let mut sent = 0usize;
    for frame in alaw.chunks(frame_len) {
        sent += frame.len();
        let now = start + Duration::from_micros(sent as u64 * 125);
        if let Some(event) = detector.push_payload(Codec::Pcma, frame, now) {
            events.push((event.digit.as_char(), event.received_at - start));
        }
    }
    // Flush a press still pending after the last frame.
    let end = start + Duration::from_micros(sent as u64 * 125);
    while let Some(event) = detector.push_frame(&[], end) {
        events.push((event.digit.as_char(), event.received_at - start));
    }
    events
}

fn detect(signal: &[f64]) -> String {
    detect_timed(&to_alaw(signal), 20)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// Builds one tone between silences, delayed by `lead_samples`.
fn single(tone: Tone, lead_samples: usize, phase: f64) -> Vec<f64> {
    let mut signal = vec![0.0; lead_samples];
    silence(&mut signal, 60);
    tone.append(&mut signal, phase);
    silence(&mut signal, 100);
    signal
}

const ALL_KEYS: &str = "123A456B789C*0#D";

#[test]
fn every_key_is_detected() {
    for key in ALL_KEYS.chars() {
        let keys = detect(&single(Tone::new(key, 50), 0, 0.3));
        assert_eq!(keys, key.to_string(), "key {key}");
    }
}

#[test]
fn key_sequence_at_40_ms_cadence() {
    // 40 ms tones with 40 ms pauses, faster than any keypad sends.
    let mut signal = Vec::new();
    silence(&mut signal, 40);
    for (index, key) in ALL_KEYS.chars().enumerate() {
        Tone::new(key, 40).append(&mut signal, index as f64);
        silence(&mut signal, 40);
    }
    assert_eq!(detect(&signal), ALL_KEYS);
}

#[test]
fn forty_ms_detected_at_every_alignment() {
    for lead in (0..HOP_LEN).step_by(3) {
        for phase in [0.0, 1.0, 2.5] {
            for key in ['1', '5', '#', 'D'] {
                let keys = detect(&single(Tone::new(key, 40), lead, phase));
                assert_eq!(
                    keys,
                    key.to_string(),
                    "key {key}, lead {lead}, phase {phase}"
                );
            }
        }
    }
}

#[test]
fn under_twenty_ms_never_detected() {
    for duration_ms in [10, 15, 19, 20] {
        for lead in (0..HOP_LEN).step_by(3) {
            for key in ['1', '5', '#', 'D'] {
                let keys = detect(&single(Tone::new(key, duration_ms), lead, 0.7));
                assert_eq!(keys, "", "key {key}, {duration_ms} ms, lead {lead}");
            }
        }
    }
}

#[test]
fn frequency_within_1_5_percent_detected() {
    for key in ALL_KEYS.chars() {
        for (low_offset, high_offset) in [
            (0.015, 0.015),
            (-0.015, -0.015),
            (0.015, -0.015),
            (-0.015, 0.015),
        ] {
            let tone = Tone {
                low_offset,
                high_offset,
                ..Tone::new(key, 40)
            };
            let keys = detect(&single(tone, 11, 0.2));
            assert_eq!(
                keys,
                key.to_string(),
                "key {key}, offsets {low_offset} {high_offset}"
            );
        }
    }
}

#[test]
fn frequency_off_3_5_percent_rejected() {
    for key in ALL_KEYS.chars() {
        for (low_offset, high_offset) in [
            (0.035, 0.0),
            (-0.035, 0.0),
            (0.0, 0.035),
            (0.0, -0.035),
            (0.05, 0.05),
        ] {
            let tone = Tone {
                low_offset,
                high_offset,
                ..Tone::new(key, 100)
            };
            let keys = detect(&single(tone, 0, 0.2));
            assert_eq!(keys, "", "key {key}, offsets {low_offset} {high_offset}");
        }
    }
}

#[test]
fn twist_limits() {
    for key in ALL_KEYS.chars() {
        for twist_db in [MAX_TWIST_DB, MIN_TWIST_DB, 0.0] {
            let tone = Tone {
                twist_db,
                low_dbm0: -14.0,
                ..Tone::new(key, 40)
            };
            let keys = detect(&single(tone, 7, 0.4));
            assert_eq!(keys, key.to_string(), "key {key}, twist {twist_db} dB");
        }
        for twist_db in [MAX_TWIST_DB + 3.0, MIN_TWIST_DB - 3.0] {
            let tone = Tone {
                twist_db,
                low_dbm0: -14.0,
                ..Tone::new(key, 100)
            };
            let keys = detect(&single(tone, 7, 0.4));
            assert_eq!(keys, "", "key {key}, twist {twist_db} dB");
        }
    }
}

#[test]
fn twist_at_limit_with_frequency_offset() {
    // The level correction for an off-nominal tone keeps a tone at the
    // twist limit acceptable at the edge of the frequency tolerance.
    for (twist_db, high_offset) in [(MIN_TWIST_DB, 0.015), (MAX_TWIST_DB, -0.015)] {
        let tone = Tone {
            twist_db,
            high_offset,
            low_offset: 0.015,
            low_dbm0: -14.0,
            ..Tone::new('D', 40)
        };
        let keys = detect(&single(tone, 0, 0.0));
        assert_eq!(keys, "D", "twist {twist_db} dB, high offset {high_offset}");
    }
}

#[test]
fn level_threshold() {
    let quiet = Tone {
        low_dbm0: -32.0,
        twist_db: 0.0,
        ..Tone::new('8', 60)
    };
    assert_eq!(detect(&single(quiet, 0, 0.0)), "8");

    let too_quiet = Tone {
        low_dbm0: -42.0,
        twist_db: 0.0,
        ..Tone::new('8', 60)
    };
    assert_eq!(detect(&single(too_quiet, 0, 0.0)), "");
}

#[test]
fn loud_tone_detected() {
    let loud = Tone {
        low_dbm0: -3.0,
        twist_db: 2.0,
        ..Tone::new('0', 60)
    };
    assert_eq!(detect(&single(loud, 0, 0.0)), "0");
}

#[test]
fn long_press_is_one_key() {
    let keys = detect(&single(Tone::new('9', 3_000), 0, 0.0));
    assert_eq!(keys, "9");
}

#[test]
fn same_key_twice_after_pause() {
    let mut signal = Vec::new();
    silence(&mut signal, 40);
    Tone::new('4', 50).append(&mut signal, 0.0);
    silence(&mut signal, 40);
    Tone::new('4', 50).append(&mut signal, 1.0);
    silence(&mut signal, 60);
    assert_eq!(detect(&signal), "44");
}

#[test]
fn short_dropout_does_not_split_press() {
    let mut signal = Vec::new();
    silence(&mut signal, 40);
    Tone::new('6', 60).append(&mut signal, 0.0);
    silence(&mut signal, 10);
    Tone::new('6', 60).append(&mut signal, 0.5);
    silence(&mut signal, 60);
    assert_eq!(detect(&signal), "6");
}

#[test]
fn packet_times_give_same_keys() {
    let mut signal = Vec::new();
    silence(&mut signal, 30);
    for (index, key) in "0815#".chars().enumerate() {
        Tone::new(key, 45).append(&mut signal, index as f64);
        silence(&mut signal, 55);
    }
    let alaw = to_alaw(&signal);
    for frame_ms in [10, 20, 30, 60] {
        let keys: String = detect_timed(&alaw, frame_ms)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, "0815#", "{frame_ms} ms packets");
    }

    // Odd packet sizes too, one sample up to a whole second.
    let mut detector = InbandDetector::new();
    let now = Instant::now();
    let mut keys = String::new();
    let mut rest = signal
        .iter()
        .map(|&s| s.round() as i16)
        .collect::<Vec<i16>>();
    let mut size = 1;
    while !rest.is_empty() {
        let take = size.min(rest.len());
        let frame: Vec<i16> = rest.drain(..take).collect();
        if let Some(event) = detector.push_frame(&frame, now) {
            keys.push(event.digit.as_char());
        }
        size = size * 3 % 8_001 + 1;
    }
    while let Some(event) = detector.push_frame(&[], now) {
        keys.push(event.digit.as_char());
    }
    assert_eq!(keys, "0815#");
}

#[test]
fn received_at_is_tone_start() {
    let mut signal = Vec::new();
    silence(&mut signal, 500);
    Tone::new('2', 80).append(&mut signal, 0.0);
    silence(&mut signal, 100);
    let events = detect_timed(&to_alaw(&signal), 20);
    assert_eq!(events.len(), 1);
    let (key, at) = events[0];
    assert_eq!(key, '2');
    let start = Duration::from_millis(500);
    let error = at.abs_diff(start);
    assert!(error <= Duration::from_millis(10), "reported at {at:?}");
}

/// A deterministic pseudo-random generator (64-bit LCG), so that noise is
/// the same on every run.
struct Lcg(u64);

impl Lcg {
    /// Returns a value uniform in −1 to 1.
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// White noise with the given RMS level in dBm0.
fn white_noise(seconds: u32, dbm0: f64, seed: u64) -> Vec<f64> {
    let mut rng = Lcg(seed);
    // A uniform variable in −1..1 has RMS 1/√3.
    let scale = DBM0_RMS * 10f64.powf(dbm0 / 20.0) * 3f64.sqrt();
    (0..seconds * 8_000).map(|_| rng.next() * scale).collect()
}

/// Pink noise (power falling 3 dB per octave) from white noise through
/// Paul Kellet's economy filter, scaled to the given RMS level.
fn pink_noise(seconds: u32, dbm0: f64, seed: u64) -> Vec<f64> {
    let white = white_noise(seconds, 0.0, seed);
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    let pink: Vec<f64> = white
        .iter()
        .map(|&w| {
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect();
    let rms = (pink.iter().map(|s| s * s).sum::<f64>() / pink.len() as f64).sqrt();
    let target = DBM0_RMS * 10f64.powf(dbm0 / 20.0);
    pink.iter().map(|s| s * target / rms).collect()
}

#[test]
fn tone_in_noise_at_15_db_snr() {
    // Each tone at -10 and -8 dBm0, noise 15 dB below the weaker one.
    let mut signal = Vec::new();
    silence(&mut signal, 40);
    for (index, key) in "159#".chars().enumerate() {
        Tone::new(key, 50).append(&mut signal, index as f64);
        silence(&mut signal, 60);
    }
    let noise = white_noise(1, -25.0, 7);
    let noisy: Vec<f64> = signal
        .iter()
        .zip(noise.iter().cycle())
        .map(|(s, n)| s + n)
        .collect();
    assert_eq!(detect(&noisy), "159#");
}

#[test]
fn noise_does_not_talk_off() {
    for dbm0 in [-40.0, -25.0, -15.0, -6.0] {
        for seed in 1..=3 {
            let white = white_noise(10, dbm0, seed);
            assert_eq!(
                detect(&white),
                "",
                "white noise at {dbm0} dBm0, seed {seed}"
            );
            let pink = pink_noise(10, dbm0, seed);
            assert_eq!(detect(&pink), "", "pink noise at {dbm0} dBm0, seed {seed}");
        }
    }
}

/// Reads an 8 kHz mono 16-bit WAV file.
fn read_wav(path: &Path) -> Vec<f64> {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.sample_rate, 8_000, "{}", path.display());
    assert_eq!(spec.channels, 1, "{}", path.display());
    assert_eq!(spec.bits_per_sample, 16, "{}", path.display());
    reader
        .samples::<i16>()
        .map(|s| f64::from(s.unwrap_or_else(|e| panic!("{}: {e}", path.display()))))
        .collect()
}

/// Returns `signal` scaled so that its RMS level is `dbm0`.
fn at_level(signal: &[f64], dbm0: f64) -> Vec<f64> {
    let rms = (signal.iter().map(|s| s * s).sum::<f64>() / signal.len() as f64).sqrt();
    let target = DBM0_RMS * 10f64.powf(dbm0 / 20.0);
    signal.iter().map(|s| s * target / rms).collect()
}

#[test]
fn speech_does_not_talk_off() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("src/media/dtmf/testdata/speech_nl.wav"),
        root.join("src/media/dtmf/testdata/speech_en.wav"),
    ];
    // The service's own prompts are Dutch and English speech too, and they
    // reach the detector as echo.
    for language in ["nl", "en"] {
        let dir = root.join("prompts").join(language);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|ext| ext == "wav") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "speech files found: {}", files.len());

    let mut seconds = 0.0;
    for path in &files {
        let speech = read_wav(path);
        seconds += speech.len() as f64 / 8_000.0;
        for dbm0 in [-25.0, -12.0] {
            let keys = detect(&at_level(&speech, dbm0));
            assert_eq!(keys, "", "{} at {dbm0} dBm0", path.display());
        }
    }
    assert!(seconds > 60.0, "only {seconds} s of speech");
}

/// Equal-tempered note frequency, with A4 = 440 Hz.
fn note_hz(semitones_from_a4: i32) -> f64 {
    440.0 * 2f64.powf(f64::from(semitones_from_a4) / 12.0)
}

/// Synthetic music: a melody over two-note chords, each note with the
/// first six harmonics at 1/k amplitude and a plucked decay. Several notes
/// fall within 1.5 % of DTMF frequencies (F5 is 698.5 Hz, F#6 is 1480 Hz).
fn music(dbm0: f64) -> Vec<f64> {
    // Semitones from A4, played as (melody, chord root, chord third).
    let bars: [(i32, i32, i32); 16] = [
        (8, -4, 0),
        (9, -4, 0),
        (21, -2, 1),
        (10, 8, 21),
        (12, 10, 14),
        (19, 8, 21),
        (0, 3, 7),
        (2, 5, 9),
        (21, 9, 12),
        (14, 8, 20),
        (16, 12, 15),
        (10, 13, 17),
        (5, -7, -3),
        (8, 21, 9),
        (3, 15, 19),
        (9, 12, 21),
    ];
    let note_samples = 8_000 * 3 / 8;
    let mut signal = Vec::new();
    for repeat in 0..3 {
        for &(melody, root, third) in &bars {
            for n in 0..note_samples {
                let t = n as f64 / 8_000.0;
                let decay = (-t * 3.0).exp();
                let mut sample = 0.0;
                for (note, gain) in [(melody, 1.0), (root, 0.7), (third, 0.7)] {
                    let f = note_hz(note + 12 * (repeat % 2));
                    for k in 1..=6 {
                        let harmonic = f * f64::from(k);
                        if harmonic < 3_800.0 {
                            sample += gain / f64::from(k) * (2.0 * PI * harmonic * t).sin();
                        }
                    }
                }
                signal.push(sample * decay);
            }
        }
    }
    at_level(&signal, dbm0)
}

#[test]
fn music_does_not_talk_off() {
    for dbm0 in [-25.0, -12.0] {
        assert_eq!(detect(&music(dbm0)), "", "music at {dbm0} dBm0");
    }
}

#[test]
fn tone_after_speech_is_detected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut signal = at_level(
        &read_wav(&root.join("src/media/dtmf/testdata/speech_nl.wav")),
        -18.0,
    );
    silence(&mut signal, 50);
    Tone::new('7', 50).append(&mut signal, 0.0);
    silence(&mut signal, 50);
    assert_eq!(detect(&signal), "7");
}

#[test]
fn hann_gain_values() {
    assert!((hann_gain(0.0) - 1.0).abs() < 1e-12);
    assert!((hann_gain(1.0) - 0.5).abs() < 1e-12);
    assert!(hann_gain(2.0) < 1e-12);
    assert!((hann_gain(0.5) - hann_gain(-0.5)).abs() < 1e-12);
    assert!(hann_gain(0.5) < 1.0);
    assert!(hann_gain(0.5) > 0.8);
}

#[test]
fn wrap_phase_range() {
    for phase in [-10.0, -PI, -1.0, 0.0, 1.0, PI - 1e-9, 10.0] {
        let wrapped = wrap_phase(phase);
        assert!((-PI..PI).contains(&wrapped), "{phase} wrapped to {wrapped}");
        let turns = (phase - wrapped) / (2.0 * PI);
        assert!(
            (turns - turns.round()).abs() < 1e-9,
            "{phase} wrapped to {wrapped}"
        );
    }
}
