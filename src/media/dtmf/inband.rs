//! Key presses sent as tones in the audio (in-band DTMF, ITU-T Q.23).
//!
//! Used when the peer offers no telephone-event, so that the keys can only
//! arrive as sound. The detector follows the receiver limits of ITU-T Q.24
//! as European networks apply them:
//! - it detects tones of 40 ms and more, and never reports tones shorter
//!   than 20 ms;
//! - it accepts frequencies within ±1.5 % of nominal and rejects those off
//!   by more than ±3.5 %;
//! - it accepts a twist from −4 dB to +8 dB, where twist is the level of the
//!   high-group tone minus the level of the low-group tone. So the high tone
//!   may be up to 8 dB louder than the low one ("normal" twist, which line
//!   loss causes), and up to 4 dB quieter ("reverse" twist).
//!
//! # How it works
//!
//! Every [`HOP_LEN`] samples (5 ms) the detector takes the last
//! [`WINDOW_LEN`] samples (20 ms), applies a Hann window and computes the
//! DFT at the eight DTMF frequencies (the Goertzel algorithm computes the
//! same single-frequency DFT term). A window is a *hit* for a key when:
//! 1. the strongest low-group and high-group frequencies each reach
//!    [`MIN_TONE_LEVEL_DBM0`] and are [`MIN_NEIGHBOUR_RATIO_DB`] above the
//!    other frequencies of their group;
//! 2. the frequency of each tone, measured from the phase advance of its DFT
//!    term since the previous window, is within [`FREQUENCY_TOLERANCE`] of
//!    nominal. A 20 ms window alone cannot tell 1.5 % from 3.5 %, because
//!    its frequency resolution is 50 Hz;
//! 3. the twist is within the limits above;
//! 4. the two tones carry at least [`MIN_TONE_FRACTION`] of the window's
//!    power. Speech and music spread their power over many frequencies, so
//!    this test rejects most of them.
//!
//! A key is reported after [`MIN_HITS`] consecutive hits of the same key,
//! and can be reported again only after [`RELEASE_MISSES`] windows without
//! a hit for it.

use std::collections::VecDeque;
use std::f64::consts::PI;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::media::dtmf::{Digit, DtmfEvent};
use crate::media::g711::Codec;
use crate::media::SAMPLE_RATE_HZ;

/// Samples in one analysis window: 20 ms at 8 kHz, a frequency resolution
/// of 50 Hz.
pub const WINDOW_LEN: usize = 160;

/// Samples between the starts of two windows: 5 ms. The frequency is
/// measured from the phase advance over one hop, which is unambiguous for
/// offsets below 8000 / (2 × 40) = 100 Hz, more than 3.5 % of 1633 Hz.
pub const HOP_LEN: usize = 40;

/// Low-group (row) frequencies in Hz, ITU-T Q.23.
const LOW_GROUP_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];

/// High-group (column) frequencies in Hz, ITU-T Q.23.
const HIGH_GROUP_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Keys by low-group row and high-group column, ITU-T Q.23.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Largest accepted frequency offset, as a fraction of nominal. Q.24
/// requires acceptance within 1.5 % and rejection beyond 3.5 %, so the
/// limit sits between the two and leaves 1 % for measurement error.
pub const FREQUENCY_TOLERANCE: f64 = 0.025;

/// Largest accepted twist (high-group level minus low-group level), in dB.
pub const MAX_TWIST_DB: f64 = 8.0;

/// Smallest accepted twist, in dB (the low group louder by 4 dB).
pub const MIN_TWIST_DB: f64 = -4.0;

/// Allowance for the error of the level estimate when the twist limits are
/// checked, in dB.
const TWIST_MARGIN_DB: f64 = 0.5;

/// Weakest tone accepted, per frequency, in dBm0.
// NOTE: an estimate, not a Q.24 figure. It assumes senders transmit each
// tone at about −10 to −6 dBm0 and allows for 25 dB or more of loss.
pub const MIN_TONE_LEVEL_DBM0: f64 = -36.0;

/// RMS value, in 16-bit linear units, of a sine at 0 dBm0. G.711 A-law
/// overloads at +3.14 dBm0 and decodes to at most 32256, so 0 dBm0 is a sine
/// of peak 32256 × 10^(−3.14/20) ≈ 22470. The µ-law figure differs by less
/// than 0.1 dB.
const DBM0_RMS: f64 = 15_890.0;

/// How far the strongest frequency of a group must exceed every other
/// frequency of that group, in dB. A tone 1.5 % off nominal still leaks
/// about −10 dB into the neighbouring frequency's DFT term.
pub const MIN_NEIGHBOUR_RATIO_DB: f64 = 6.0;

/// Smallest share of the window's power that the two tones must carry.
/// Windows only partly filled by a tone fall below it, which sets the
/// shortest tone that can be detected. The unit tests fail at 0.5 (20 ms
/// tones pass) and at 0.9 (a 10 ms drop-out splits a press).
pub const MIN_TONE_FRACTION: f64 = 0.8;

/// Consecutive hits that report a key. In the unit tests, tones of 20 ms
/// reach at most 3 hits and tones of 40 ms at least 5, at every alignment
/// to the 5 ms hop tried.
pub const MIN_HITS: u32 = 4;

/// Consecutive windows without a hit that end a key press, 20 ms of hops.
/// In the unit tests a 40 ms pause gives more misses, so two presses stay
/// apart. A drop-out of 10 ms gives fewer, so it does not split a press.
// NOTE: only silent drop-outs are bridged. 10 ms of another key's tone
// inside a press gives more misses than this and splits the press in two.
pub const RELEASE_MISSES: u32 = 4;

/// Precomputed Hann-windowed DFT kernels for the eight frequencies.
struct Kernels {
    /// For each frequency, low group first, the complex kernel
    /// `w[m]·e^(−jωm)` as (real, imaginary) pairs.
    terms: [[(f64, f64); WINDOW_LEN]; 8],
    /// The Hann window itself, for the window power.
    window: [f64; WINDOW_LEN],
    /// Sum of the window, which scales a tone's DFT magnitude.
    window_sum: f64,
    /// Sum of the squared window, which scales the window power.
    window_square_sum: f64,
}

/// The kernels, computed on first use and shared by every detector.
static KERNELS: LazyLock<Kernels> = LazyLock::new(|| {
    let mut window = [0.0; WINDOW_LEN];
    for (m, weight) in window.iter_mut().enumerate() {
        *weight = 0.5 - 0.5 * (2.0 * PI * m as f64 / WINDOW_LEN as f64).cos();
    }

    let mut terms = [[(0.0, 0.0); WINDOW_LEN]; 8];
    for (kernel, frequency) in terms
        .iter_mut()
        .zip(LOW_GROUP_HZ.iter().chain(HIGH_GROUP_HZ.iter()))
    {
        let omega = angular_frequency(*frequency);
        for (m, term) in kernel.iter_mut().enumerate() {
            let phase = omega * m as f64;
            *term = (window[m] * phase.cos(), -window[m] * phase.sin());
        }
    }

    Kernels {
        terms,
        window,
        window_sum: window.iter().sum(),
        window_square_sum: window.iter().map(|w| w * w).sum(),
    }
});

/// Returns the angular frequency in radians per sample.
fn angular_frequency(hz: f64) -> f64 {
    2.0 * PI * hz / f64::from(SAMPLE_RATE_HZ)
}

/// The DFT terms of one window at the eight frequencies, low group first.
type Spectrum = [(f64, f64); 8];

/// The key press currently heard, if any.
#[derive(Debug, Clone, Copy)]
struct Press {
    /// The key of the current run of hits.
    key: Digit,
    /// Index of the first sample of the run's first window, to date the
    /// press.
    start_sample: u64,
    /// Consecutive hits so far (saturating).
    hits: u32,
    /// Consecutive windows without a hit since the last hit.
    misses: u32,
    /// Whether this press was already reported.
    reported: bool,
}

/// Sans-I/O in-band DTMF detector for one call's received audio.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    /// Samples not yet analysed, oldest first, as floating point. Holds
    /// fewer than `WINDOW_LEN + HOP_LEN` samples between calls.
    samples: Vec<f64>,
    /// Index, counted from the first sample pushed, of `samples[0]`.
    first_sample: u64,
    /// DFT terms of the previous window, for the frequency measurement.
    previous: Option<Spectrum>,
    /// The run of hits or the press in progress.
    press: Option<Press>,
    /// Key presses found but not yet returned, when one frame held more
    /// than one.
    pending: VecDeque<DtmfEvent>,
    /// Reusable buffer for [`InbandDetector::push_payload`].
    decoded: Vec<i16>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector::new()
    }
}

impl InbandDetector {
    /// Creates a detector that has heard nothing yet.
    pub fn new() -> InbandDetector {
        InbandDetector {
            samples: Vec::with_capacity(WINDOW_LEN + HOP_LEN * 16),
            first_sample: 0,
            previous: None,
            press: None,
            pending: VecDeque::new(),
            decoded: Vec::new(),
        }
    }

    /// Analyses received 8 kHz linear PCM samples and returns a key press
    /// when one is recognised.
    ///
    /// The driver calls this for every received audio packet, in sequence
    /// order and without gaps (insert silence for lost packets), with any
    /// packet time. `now` is the arrival time of the packet, taken as the
    /// time of its last sample. [`DtmfEvent::received_at`] is the estimated
    /// start of the tone. When one call finds two presses, the second is
    /// returned by the next call.
    #[must_use = "a returned key press must reach the call flow"]
    pub fn push_frame(&mut self, samples: &[i16], now: Instant) -> Option<DtmfEvent> {
        self.samples.extend(samples.iter().map(|&s| f64::from(s)));
        let end_sample = self.first_sample + self.samples.len() as u64;

        while self.samples.len() >= WINDOW_LEN {
            if let Some((key, start_sample)) = self.analyse_window() {
                let behind = end_sample.saturating_sub(start_sample);
                let tone_age =
                    Duration::from_micros(behind * 1_000_000 / u64::from(SAMPLE_RATE_HZ));
                self.pending.push_back(DtmfEvent {
                    digit: key,
                    received_at: now.checked_sub(tone_age).unwrap_or(now),
                });
            }
            self.samples.drain(..HOP_LEN);
            self.first_sample += HOP_LEN as u64;
        }

        self.pending.pop_front()
    }

    /// Decodes a G.711 RTP payload and passes it to
    /// [`InbandDetector::push_frame`].
    #[must_use = "a returned key press must reach the call flow"]
    pub fn push_payload(
        &mut self,
        codec: Codec,
        payload: &[u8],
        now: Instant,
    ) -> Option<DtmfEvent> {
        let mut decoded = std::mem::take(&mut self.decoded);
        codec.decode_into(payload, &mut decoded);
        let event = self.push_frame(&decoded, now);
        self.decoded = decoded;
        event
    }

    /// Classifies the window at the start of `samples` and advances the
    /// press state. Returns the key and the sample index where its tone
    /// started when this window completes a press.
    fn analyse_window(&mut self) -> Option<(Digit, u64)> {
        let window = self.samples.get(..WINDOW_LEN)?;
        let spectrum = spectrum(window);
        let hit = self
            .previous
            .and_then(|previous| classify(window, &previous, &spectrum));
        self.previous = Some(spectrum);

        let window_start = self.first_sample;
        match (hit, self.press.as_mut()) {
            (Some(key), Some(press)) if press.key == key => {
                press.hits = press.hits.saturating_add(1);
                press.misses = 0;
            }
            (Some(key), _) => {
                // The previous window's start is when the tone began to
                // fill the windows, since a hit needs two windows.
                self.press = Some(Press {
                    key,
                    start_sample: window_start.saturating_sub(HOP_LEN as u64),
                    hits: 1,
                    misses: 0,
                    reported: false,
                });
            }
            (None, Some(press)) => {
                press.misses += 1;
                if press.misses >= RELEASE_MISSES || !press.reported {
                    // A run that never reached MIN_HITS ends at its first
                    // miss, so two short bursts do not add up.
                    self.press = None;
                }
            }
            (None, None) => {}
        }

        let press = self.press.as_mut()?;
        if press.reported || press.hits < MIN_HITS {
            return None;
        }
        press.reported = true;
        Some((press.key, press.start_sample))
    }
}

/// Computes the DFT terms of one window at the eight frequencies.
fn spectrum(window: &[f64]) -> Spectrum {
    let kernels = &*KERNELS;
    let mut spectrum = [(0.0, 0.0); 8];
    for (term, kernel) in spectrum.iter_mut().zip(kernels.terms.iter()) {
        let (mut re, mut im) = (0.0, 0.0);
        for (sample, (kernel_re, kernel_im)) in window.iter().zip(kernel.iter()) {
            re += sample * kernel_re;
            im += sample * kernel_im;
        }
        *term = (re, im);
    }
    spectrum
}

/// One group's strongest frequency in a window.
struct GroupPeak {
    /// Index within the group (row or column).
    index: usize,
    /// Estimated mean-square power of the tone, corrected for its
    /// frequency offset, in 16-bit linear units squared.
    power: f64,
}

/// Returns the key when the window passes all four hit tests of the module
/// documentation.
fn classify(window: &[f64], previous: &Spectrum, current: &Spectrum) -> Option<Digit> {
    let kernels = &*KERNELS;

    let low = group_peak(&LOW_GROUP_HZ, &previous[..4], &current[..4])?;
    let high = group_peak(&HIGH_GROUP_HZ, &previous[4..], &current[4..])?;

    let twist_db = 10.0 * (high.power / low.power).log10();
    if !(MIN_TWIST_DB - TWIST_MARGIN_DB..=MAX_TWIST_DB + TWIST_MARGIN_DB).contains(&twist_db) {
        return None;
    }

    let window_power = window
        .iter()
        .zip(kernels.window.iter())
        .map(|(sample, weight)| (sample * weight).powi(2))
        .sum::<f64>()
        / kernels.window_square_sum;
    if low.power + high.power < MIN_TONE_FRACTION * window_power {
        return None;
    }

    let row = KEYPAD.get(low.index)?;
    Digit::from_char(*row.get(high.index)?)
}

/// Finds the strongest frequency of a group and checks it against the
/// level, neighbour and frequency tests. Returns `None` when any fails.
fn group_peak(
    frequencies: &[f64; 4],
    previous: &[(f64, f64)],
    current: &[(f64, f64)],
) -> Option<GroupPeak> {
    let kernels = &*KERNELS;

    // A tone of mean-square power P at a DFT frequency gives |X|² =
    // 2·P·(Σw)²/4, so P = 2·|X|²/(Σw)².
    let powers: Vec<f64> = current
        .iter()
        .map(|(re, im)| 2.0 * (re * re + im * im) / (kernels.window_sum * kernels.window_sum))
        .collect();

    let (index, &peak) = powers
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;

    let min_power = (DBM0_RMS * DBM0_RMS) * 10f64.powf(MIN_TONE_LEVEL_DBM0 / 10.0);
    if peak < min_power {
        return None;
    }

    let neighbour_ratio = 10f64.powf(MIN_NEIGHBOUR_RATIO_DB / 10.0);
    let dominates = powers
        .iter()
        .enumerate()
        .all(|(other, power)| other == index || peak >= neighbour_ratio * power);
    if !dominates {
        return None;
    }

    // The DFT term of a tone at ω rotates by ω·HOP_LEN per hop. Removing
    // the nominal rotation leaves the offset, wrapped to ±π.
    let nominal = *frequencies.get(index)?;
    let (previous_re, previous_im) = *previous.get(index)?;
    let (current_re, current_im) = *current.get(index)?;
    let rotation_re = current_re * previous_re + current_im * previous_im;
    let rotation_im = current_im * previous_re - current_re * previous_im;
    let rotation = rotation_im.atan2(rotation_re);
    let expected = angular_frequency(nominal) * HOP_LEN as f64;
    let offset = wrap_phase(rotation - expected);
    let offset_hz = offset * f64::from(SAMPLE_RATE_HZ) / (2.0 * PI * HOP_LEN as f64);
    if offset_hz.abs() > FREQUENCY_TOLERANCE * nominal {
        return None;
    }

    // A tone off nominal falls on the slope of the window's main lobe, so
    // its level is underestimated. Correct for it before the twist test.
    let bin_offset = offset_hz * WINDOW_LEN as f64 / f64::from(SAMPLE_RATE_HZ);
    let gain = hann_gain(bin_offset);
    Some(GroupPeak {
        index,
        power: peak / (gain * gain),
    })
}

/// Wraps a phase to the range −π to π.
fn wrap_phase(phase: f64) -> f64 {
    (phase + PI).rem_euclid(2.0 * PI) - PI
}

/// Returns the magnitude response of the Hann-windowed DFT to a tone
/// `bins` DFT bins off its frequency, relative to a tone on it.
fn hann_gain(bins: f64) -> f64 {
    let x = bins.abs();
    if x < 1e-9 {
        return 1.0;
    }
    if (x - 1.0).abs() < 1e-6 {
        return 0.5;
    }
    let sinc = (PI * x).sin() / (PI * x);
    (sinc / (1.0 - x * x)).abs()
}

#[cfg(test)]
mod tests;
