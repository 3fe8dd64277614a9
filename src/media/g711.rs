//! G.711 companding (ITU-T G.711): A-law (PCMA) and µ-law (PCMU).
//!
//! The encoders take 16-bit linear PCM and drop the low bits that G.711 does
//! not carry (A-law works on 13 bits, µ-law on 14). Encoding the decoded
//! value of any code word gives back that code word. The one exception is
//! µ-law 0x7F (negative zero), which decodes to 0 and re-encodes as 0xFF
//! (positive zero).

/// A G.711 variant that can carry a call's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// A-law, the variant European networks use (RTP encoding name `PCMA`).
    Pcma,
    /// µ-law, the variant North American and Japanese networks use (`PCMU`).
    Pcmu,
}

impl Codec {
    /// Both codecs.
    pub const ALL: [Codec; 2] = [Codec::Pcma, Codec::Pcmu];

    /// Returns the static RTP payload type that RFC 3551 assigns: 8 for PCMA,
    /// 0 for PCMU.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcma => 8,
            Codec::Pcmu => 0,
        }
    }

    /// Returns the code word for silence: 0xD5 for A-law (decodes to +8, the
    /// smallest positive step) and 0xFF for µ-law (decodes to 0).
    pub fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcma => 0xD5,
            Codec::Pcmu => 0xFF,
        }
    }

    /// Returns the RTP encoding name used in SDP `a=rtpmap` (RFC 3551).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
        }
    }

    /// Finds the codec for an `a=rtpmap` encoding name, ignoring ASCII case
    /// because peers send both `PCMA` and `pcma`.
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.encoding_name().eq_ignore_ascii_case(name))
    }

    /// Encodes one 16-bit linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcma => linear_to_alaw(sample),
            Codec::Pcmu => linear_to_ulaw(sample),
        }
    }

    /// Decodes one code word to a 16-bit linear sample.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcma => alaw_to_linear(code),
            Codec::Pcmu => ulaw_to_linear(code),
        }
    }

    /// Decodes an RTP payload of any length into `samples`, replacing its
    /// contents, so that a caller can reuse one buffer for every packet.
    pub fn decode_into(self, codes: &[u8], samples: &mut Vec<i16>) {
        samples.clear();
        samples.extend(codes.iter().map(|&code| self.decode(code)));
    }
}

/// Mask of the four quantisation bits inside a segment.
const QUANT_MASK: i32 = 0x0F;

/// Mask of the three segment (exponent) bits.
const SEG_MASK: i32 = 0x70;

/// Shift that moves the segment bits to the low end.
const SEG_SHIFT: i32 = 4;

/// Sign bit of a code word.
const SIGN_BIT: i32 = 0x80;

/// Upper end of each A-law segment, in 13-bit magnitude.
const ALAW_SEGMENT_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// Upper end of each µ-law segment, in biased 14-bit magnitude.
const ULAW_SEGMENT_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

/// Bias that µ-law adds before the segment search, so that the segments
/// start at a power of two.
const ULAW_BIAS: i32 = 0x84;

/// Largest 14-bit magnitude µ-law can encode before the bias is added.
const ULAW_CLIP: i32 = 8159;

/// Returns the index of the first segment whose end is at least `value`, or
/// 8 when `value` is above the last segment.
fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    let mut index = 0;
    for end in ends {
        if value <= *end {
            return index;
        }
        index += 1;
    }
    index
}

/// Encodes a 16-bit linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample) >> 3;

    // Positive values keep the sign bit set, and every code word has its even
    // bits inverted (the 0x55 pattern) to keep ones density on the line.
    let mask = if magnitude >= 0 {
        0xD5
    } else {
        magnitude = -magnitude - 1;
        0x55
    };

    let seg = segment(magnitude, &ALAW_SEGMENT_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }

    let shift = if seg < 2 { 1 } else { seg };
    let code = (seg << SEG_SHIFT) | ((magnitude >> shift) & QUANT_MASK);
    (code ^ mask) as u8
}

/// Decodes an A-law code word to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = i32::from(code) ^ 0x55;

    let mut value = (code & QUANT_MASK) << 4;
    let seg = (code & SEG_MASK) >> SEG_SHIFT;
    match seg {
        0 => value += 8,
        1 => value += 0x108,
        _ => {
            value += 0x108;
            value <<= seg - 1;
        }
    }

    // The largest magnitude is 32256, so the result always fits in i16.
    let signed = if code & SIGN_BIT != 0 { value } else { -value };
    signed as i16
}

/// Encodes a 16-bit linear sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample) >> 2;

    let mask = if magnitude < 0 {
        magnitude = -magnitude;
        0x7F
    } else {
        0xFF
    };

    magnitude = magnitude.min(ULAW_CLIP) + (ULAW_BIAS >> 2);

    let seg = segment(magnitude, &ULAW_SEGMENT_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }

    let code = (seg << SEG_SHIFT) | ((magnitude >> (seg + 1)) & QUANT_MASK);
    (code ^ mask) as u8
}

/// Decodes a µ-law code word to 16-bit linear.
pub fn ulaw_to_linear(code: u8) -> i16 {
    // µ-law transmits every bit inverted.
    let code = i32::from(!code);

    let mut value = ((code & QUANT_MASK) << 3) + ULAW_BIAS;
    value <<= (code & SEG_MASK) >> SEG_SHIFT;

    // The largest magnitude is 32124, so the result always fits in i16.
    let signed = if code & SIGN_BIT != 0 {
        ULAW_BIAS - value
    } else {
        value - ULAW_BIAS
    };
    signed as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_decode_known_values() {
        // Endpoints and zero crossings of the G.711 A-law table.
        let cases: [(u8, i16); 8] = [
            (0xD5, 8),
            (0x55, -8),
            (0xD4, 24),
            (0x54, -24),
            (0xAA, 32256),
            (0x2A, -32256),
            (0x80, 5504),
            (0x00, -5504),
        ];
        for (code, expected) in cases {
            assert_eq!(alaw_to_linear(code), expected, "A-law code {code:#04x}");
        }
    }

    #[test]
    fn ulaw_decode_known_values() {
        let cases: [(u8, i16); 8] = [
            (0xFF, 0),
            (0x7F, 0),
            (0xFE, 8),
            (0x7E, -8),
            (0x80, 32124),
            (0x00, -32124),
            (0xEF, 132),
            (0x6F, -132),
        ];
        for (code, expected) in cases {
            assert_eq!(ulaw_to_linear(code), expected, "µ-law code {code:#04x}");
        }
    }

    #[test]
    fn encode_matches_sox_away_from_zero() {
        // Produced by SoX 14.4.2: `sox -D -t raw -r 8000 -e signed-integer
        // -b 16 -c 1 in.raw -t raw -e a-law|mu-law -b 8 out.raw`. SoX rounds
        // differently for small magnitudes, so those are tested separately.
        let cases: [(i16, u8, u8); 13] = [
            (100, 0xD3, 0xF2),
            (1000, 0xFA, 0xCE),
            (-1000, 0x7A, 0x4E),
            (4000, 0x9A, 0xAF),
            (-4000, 0x1A, 0x2F),
            (8000, 0x8A, 0xA0),
            (-8000, 0x0A, 0x20),
            (16000, 0xBA, 0x90),
            (-16000, 0x3A, 0x10),
            (32000, 0xAA, 0x80),
            (-32000, 0x2A, 0x00),
            (i16::MAX, 0xAA, 0x80),
            (i16::MIN, 0x2A, 0x00),
        ];
        for (sample, alaw, ulaw) in cases {
            assert_eq!(linear_to_alaw(sample), alaw, "A-law of {sample}");
            assert_eq!(linear_to_ulaw(sample), ulaw, "µ-law of {sample}");
        }
    }

    #[test]
    fn encode_near_zero() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(7), 0xFE);
        assert_eq!(linear_to_ulaw(-1), 0x7E);
        assert_eq!(linear_to_ulaw(-100), 0x72);

        // SoX gives 0x50 (decodes to -88), but 0x53 decodes to -104, the
        // nearer A-law level.
        assert_eq!(linear_to_alaw(-100), 0x53);
        assert_eq!(alaw_to_linear(0x53), -104);
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=u8::MAX {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law code {code:#04x}"
            );
        }
    }

    #[test]
    fn ulaw_round_trips_every_code_but_negative_zero() {
        for code in 0..=u8::MAX {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected,
                "µ-law code {code:#04x}"
            );
        }
    }

    #[test]
    fn encode_is_monotonic() {
        // A larger input never decodes to a smaller value.
        for codec in Codec::ALL {
            let mut previous = i16::MIN;
            for sample in (i16::MIN..=i16::MAX).step_by(7) {
                let decoded = codec.decode(codec.encode(sample));
                assert!(
                    decoded >= previous,
                    "{codec:?} at {sample}: {decoded} < {previous}"
                );
                previous = decoded;
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // G.711 keeps four mantissa bits, so the error is at most 1/16 of
        // the magnitude plus one small step.
        for codec in Codec::ALL {
            for sample in (-32000i16..=32000).step_by(3) {
                let decoded = codec.decode(codec.encode(sample));
                let error = (i32::from(decoded) - i32::from(sample)).abs();
                let bound = i32::from(sample).abs() / 16 + 16;
                assert!(error <= bound, "{codec:?} at {sample}: error {error}");
            }
        }
    }

    #[test]
    fn decode_into_replaces_buffer() {
        let mut samples = vec![1, 2, 3, 4, 5];
        Codec::Pcma.decode_into(&[0xD5, 0xAA], &mut samples);
        assert_eq!(samples, [8, 32256]);
        Codec::Pcmu.decode_into(&[0x00], &mut samples);
        assert_eq!(samples, [-32124]);
        Codec::Pcmu.decode_into(&[], &mut samples);
        assert!(samples.is_empty());
    }

    #[test]
    fn codec_constants() {
        assert_eq!(Codec::Pcma.static_payload_type(), 8);
        assert_eq!(Codec::Pcmu.static_payload_type(), 0);
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(Codec::from_encoding_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::from_encoding_name("PCMU"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_encoding_name("G722"), None);
    }
}
