//! Prompt playback for one call, one frame at a time.
//!
//! The player is sans-I/O and keeps no time. The driver must call
//! [`Player::next_frame`] exactly once per 20 ms frame period, measured on
//! absolute deadlines (start time + n × 20 ms, not "20 ms after the last
//! send"), so that scheduling jitter does not add up over a long prompt.
//! Each call returns one frame to send: prompt audio while the queue has
//! some, silence otherwise. Sending silence keeps NAT bindings and the
//! peer's jitter buffer alive between prompts.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::media::g711::Codec;
use crate::media::prompts::Prompt;
use crate::media::{Frame, SAMPLES_PER_FRAME};

/// Queue capacity reserved up front, so that enqueueing a typical sequence
/// (welcome, why we ask, what we never ask, enter contract number) does not
/// allocate. Longer queues still work; they grow the buffer once.
const INITIAL_QUEUE_CAPACITY: usize = 8;

/// A-law silence frame.
static PCMA_SILENCE: Frame = [0xD5; SAMPLES_PER_FRAME];

/// µ-law silence frame.
static PCMU_SILENCE: Frame = [0xFF; SAMPLES_PER_FRAME];

/// One frame to send, returned by [`Player::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerOutput<'a> {
    /// A frame of prompt audio.
    Audio(&'a Frame),
    /// A silence frame; nothing is queued.
    Silence(&'a Frame),
    /// A silence frame, returned once when the queue has just run empty: the
    /// previous call returned the last audio frame (or the queue held only
    /// prompts without frames). The call flow treats this as "the prompts
    /// finished playing". Not returned after [`Player::stop`].
    Drained(&'a Frame),
}

impl<'a> PlayerOutput<'a> {
    /// Returns the frame to send, whichever the variant.
    pub fn frame(&self) -> &'a Frame {
        match self {
            PlayerOutput::Audio(frame)
            | PlayerOutput::Silence(frame)
            | PlayerOutput::Drained(frame) => frame,
        }
    }

    /// Returns whether this frame is prompt audio.
    pub fn is_audio(&self) -> bool {
        matches!(self, PlayerOutput::Audio(_))
    }
}

/// Queue of prompts for one call, played in order.
#[derive(Debug)]
pub struct Player {
    /// Codec negotiated for the call; selects which frames of a prompt play.
    codec: Codec,
    /// Prompts waiting to play; the front one is playing.
    queue: VecDeque<Arc<Prompt>>,
    /// Index of the next frame of the front prompt.
    next_frame_index: usize,
    /// Whether prompts were enqueued since the queue was last empty, so that
    /// `Drained` is reported once per drain and never after `stop`.
    drain_pending: bool,
}

impl Player {
    /// Creates an idle player for the call's codec.
    pub fn new(codec: Codec) -> Player {
        Player {
            codec,
            queue: VecDeque::with_capacity(INITIAL_QUEUE_CAPACITY),
            next_frame_index: 0,
            drain_pending: false,
        }
    }

    /// Switches to another codec's frames, for a re-INVITE that changed the
    /// codec. Both codecs have the same frames, so playback goes on from
    /// the same 20 ms position and the queue is kept.
    pub fn set_codec(&mut self, codec: Codec) {
        self.codec = codec;
    }

    /// Appends a prompt to the queue. It plays after those already queued.
    pub fn enqueue(&mut self, prompt: Arc<Prompt>) {
        self.queue.push_back(prompt);
        self.drain_pending = true;
    }

    /// Stops playback at once and clears the queue (barge-in). The next
    /// frame is silence, and no `Drained` is reported for the stopped
    /// prompts, because the code that called `stop` ended them itself.
    pub fn stop(&mut self) {
        self.queue.clear();
        self.next_frame_index = 0;
        self.drain_pending = false;
    }

    /// Returns whether prompt audio is queued or playing.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Returns the number of prompts queued, including the one playing.
    pub fn queued_prompts(&self) -> usize {
        self.queue.len()
    }

    /// Returns the frame for the next 20 ms period.
    ///
    /// The driver calls this once per frame period and sends the returned
    /// frame, whatever the variant. It does not allocate.
    #[must_use = "the returned frame must be sent to keep the 20 ms pace"]
    pub fn next_frame(&mut self) -> PlayerOutput<'_> {
        // Skip finished prompts (and empty ones) until a frame is found.
        while let Some(prompt) = self.queue.front() {
            if self.next_frame_index < prompt.frames(self.codec).len() {
                break;
            }
            self.queue.pop_front();
            self.next_frame_index = 0;
        }

        let silence = match self.codec {
            Codec::Pcma => &PCMA_SILENCE,
            Codec::Pcmu => &PCMU_SILENCE,
        };

        let Some(prompt) = self.queue.front() else {
            if self.drain_pending {
                self.drain_pending = false;
                return PlayerOutput::Drained(silence);
            }
            return PlayerOutput::Silence(silence);
        };

        match prompt.frames(self.codec).get(self.next_frame_index) {
            Some(frame) => {
                self.next_frame_index += 1;
                PlayerOutput::Audio(frame)
            }
            // The loop above left a prompt with a frame at this index.
            None => PlayerOutput::Silence(silence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::prompts::{Language, PromptId};

    /// Builds a prompt of `frames` frames whose samples all equal `level`.
    fn prompt(level: i16, frames: usize) -> Arc<Prompt> {
        let samples = vec![level; frames * SAMPLES_PER_FRAME];
        Arc::new(Prompt::from_samples(
            PromptId::Welcome.file_stem(),
            Language::Nl,
            &samples,
        ))
    }

    #[test]
    fn idle_player_sends_silence() {
        let mut player = Player::new(Codec::Pcmu);
        for _ in 0..3 {
            let output = player.next_frame();
            assert_eq!(output, PlayerOutput::Silence(&PCMU_SILENCE));
        }
    }

    #[test]
    fn plays_queue_in_order_then_drains_once() {
        let mut player = Player::new(Codec::Pcma);
        player.enqueue(prompt(1000, 2));
        player.enqueue(prompt(-2000, 1));
        assert_eq!(player.queued_prompts(), 2);

        let first = Codec::Pcma.encode(1000);
        let second = Codec::Pcma.encode(-2000);
        let expected = [first, first, second];
        for (index, code) in expected.into_iter().enumerate() {
            let output = player.next_frame();
            assert!(output.is_audio(), "frame {index} is audio");
            assert!(
                output.frame().iter().all(|byte| *byte == code),
                "frame {index} content"
            );
        }

        assert_eq!(player.next_frame(), PlayerOutput::Drained(&PCMA_SILENCE));
        assert_eq!(player.next_frame(), PlayerOutput::Silence(&PCMA_SILENCE));
        assert!(!player.is_playing());
    }

    #[test]
    fn stop_clears_queue_without_drained() {
        let mut player = Player::new(Codec::Pcmu);
        player.enqueue(prompt(500, 5));
        player.enqueue(prompt(500, 5));
        assert!(player.next_frame().is_audio());

        player.stop();
        assert!(!player.is_playing());
        assert_eq!(player.next_frame(), PlayerOutput::Silence(&PCMU_SILENCE));
        assert_eq!(player.next_frame(), PlayerOutput::Silence(&PCMU_SILENCE));
    }

    #[test]
    fn enqueue_after_stop_plays_from_start() {
        let mut player = Player::new(Codec::Pcmu);
        player.enqueue(prompt(700, 3));
        assert!(player.next_frame().is_audio());
        assert!(player.next_frame().is_audio());
        player.stop();

        player.enqueue(prompt(700, 3));
        let mut audio_frames = 0;
        while player.next_frame().is_audio() {
            audio_frames += 1;
        }
        assert_eq!(audio_frames, 3, "the new prompt plays whole");
    }

    #[test]
    fn drained_again_after_new_prompt() {
        let mut player = Player::new(Codec::Pcma);
        for _ in 0..2 {
            player.enqueue(prompt(100, 1));
            assert!(player.next_frame().is_audio());
            assert!(matches!(player.next_frame(), PlayerOutput::Drained(_)));
        }
    }

    #[test]
    fn only_empty_prompt_still_drains() {
        let mut player = Player::new(Codec::Pcmu);
        player.enqueue(prompt(100, 0));
        assert!(matches!(player.next_frame(), PlayerOutput::Drained(_)));
        assert!(matches!(player.next_frame(), PlayerOutput::Silence(_)));
    }

    #[test]
    fn empty_prompt_is_skipped() {
        let mut player = Player::new(Codec::Pcma);
        player.enqueue(prompt(100, 0));
        player.enqueue(prompt(100, 1));
        assert!(player.next_frame().is_audio());
        assert!(matches!(player.next_frame(), PlayerOutput::Drained(_)));
    }

    #[test]
    fn uses_codec_frames() {
        let shared = prompt(3000, 1);
        let mut alaw = Player::new(Codec::Pcma);
        let mut ulaw = Player::new(Codec::Pcmu);
        alaw.enqueue(Arc::clone(&shared));
        ulaw.enqueue(shared);
        assert_eq!(alaw.next_frame().frame()[0], Codec::Pcma.encode(3000));
        assert_eq!(ulaw.next_frame().frame()[0], Codec::Pcmu.encode(3000));
    }
}
