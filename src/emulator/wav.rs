//! A tiny WAV writer for the emulator's call recordings: 16-bit PCM at 8000 Hz, mono or
//! stereo, as Twilio records calls, each channel a sine tone of its own (so that the two
//! channels of a dual-channel recording differ and a decoder can tell them apart).
//!
//! This file owns the bytes of such a file and nothing else: no I/O, no encryption
//! (the catalog seals what it returns). Tones use frequencies that divide 8000 Hz, so one
//! period is a whole number of samples and a 10-minute file costs a table lookup per
//! sample.

/// Twilio records calls at 8 kHz.
pub const SAMPLE_RATE: u32 = 8000;
/// The RIFF/WAVE header of a plain PCM file, in bytes.
pub const HEADER_LEN: u64 = 44;

/// A call recording's audio: `channels` sine tones (one per channel, `freqs[i]` Hz) for
/// `seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tone {
    pub channels: u16,
    pub seconds: u32,
    /// One per channel; each must divide [`SAMPLE_RATE`].
    pub freqs: Vec<u32>,
}

impl Tone {
    /// A tone of `seconds` on `channels` channels, channel `i` at 400 Hz + 100·i·`seed`
    /// rounded to a divisor of 8000 (400, 500, 800, 1000 Hz…).
    pub fn new(channels: u16, seconds: u32, seed: u32) -> Self {
        const DIVISORS: [u32; 6] = [400, 500, 800, 1000, 250, 320];
        let freqs = (0..u32::from(channels))
            .map(|c| DIVISORS[((seed + 3 * c) as usize) % DIVISORS.len()])
            .collect();
        Self {
            channels,
            seconds,
            freqs,
        }
    }

    /// The file's length in bytes: header and 2 bytes per sample and channel.
    pub fn len(&self) -> u64 {
        HEADER_LEN + self.data_len()
    }

    /// Whether the file holds no samples (a 0-second recording).
    pub fn is_empty(&self) -> bool {
        self.seconds == 0
    }

    fn data_len(&self) -> u64 {
        u64::from(SAMPLE_RATE) * u64::from(self.seconds) * u64::from(self.channels) * 2
    }

    /// The whole WAV file.
    pub fn wav(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        out.extend_from_slice(&header(self.channels, self.data_len() as u32));
        // One period of each channel's tone, 16-bit little-endian, at half amplitude.
        let periods: Vec<Vec<[u8; 2]>> = self
            .freqs
            .iter()
            .map(|&f| {
                let n = (SAMPLE_RATE / f) as usize;
                (0..n)
                    .map(|i| {
                        let phase = std::f64::consts::TAU * i as f64 / n as f64;
                        ((phase.sin() * 16_000.0) as i16).to_le_bytes()
                    })
                    .collect()
            })
            .collect();
        // The frames repeat every lcm(periods) frames: build that once, then copy it.
        let cycle = periods.iter().fold(1, |l, p| lcm(l, p.len()));
        let mut pattern = Vec::with_capacity(cycle * periods.len() * 2);
        for i in 0..cycle {
            for period in &periods {
                pattern.extend_from_slice(&period[i % period.len()]);
            }
        }
        let frames = SAMPLE_RATE as usize * self.seconds as usize;
        out.extend_from_slice(&pattern.repeat(frames / cycle));
        out.extend_from_slice(&pattern[..(frames % cycle) * periods.len() * 2]);
        out
    }
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}

/// The 44-byte header of a PCM WAV file of `data_len` bytes of 16-bit 8 kHz samples.
pub fn header(channels: u16, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = channels * 2;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_length_are_a_16_bit_8_khz_pcm_file() {
        let tone = Tone::new(2, 3, 0);
        let wav = tone.wav();
        assert_eq!(wav.len() as u64, tone.len());
        assert_eq!(wav.len(), 44 + 8000 * 3 * 2 * 2);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(
            u32::from_le_bytes(wav[4..8].try_into().unwrap()),
            36 + 96_000
        );
        assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2);
        assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 8000);
        assert_eq!(u32::from_le_bytes(wav[28..32].try_into().unwrap()), 32_000);
        assert_eq!(u16::from_le_bytes([wav[34], wav[35]]), 16);
        assert_eq!(&wav[36..40], b"data");
    }

    #[test]
    fn the_channels_differ_and_every_frequency_divides_the_rate() {
        for seed in 0..12 {
            let tone = Tone::new(2, 1, seed);
            assert_ne!(tone.freqs[0], tone.freqs[1], "seed {seed}");
            assert!(tone.freqs.iter().all(|f| SAMPLE_RATE.is_multiple_of(*f)));
        }
        let wav = Tone::new(2, 1, 0).wav();
        let samples: Vec<i16> = wav[44..]
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        // Sample i of each channel is the sine at its frequency.
        let at = |i: usize, f: f64| {
            ((std::f64::consts::TAU * f * i as f64 / 8000.0).sin() * 16_000.0) as i16
        };
        let tone = Tone::new(2, 1, 0);
        for i in [0, 1, 7, 79, 80, 81, 3999, 7999] {
            for c in 0..2 {
                let want = at(i, f64::from(tone.freqs[c]));
                assert!(
                    (samples[2 * i + c] - want).abs() <= 1,
                    "sample {i} channel {c}"
                );
            }
        }
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_ne!(left, right);
        assert!(left.iter().any(|&s| s > 15_000) && left.iter().any(|&s| s < -15_000));
    }
}
