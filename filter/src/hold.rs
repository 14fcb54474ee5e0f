//! Whether Envoy holds a request's headers while the filter reads its body.
//!
//! To scan a body before anything of the request goes upstream, the filter
//! pauses the request headers (`Action::Pause`, Envoy's `StopIteration`)
//! and waits for the body callbacks. Envoy (1.35 and later) passes that
//! pause on only when the Wasm plugin's config sets
//! `allow_on_headers_stop_iteration: true`. Without it, Envoy's proxy-wasm
//! host turns the pause into `StopAllIterationAndWatermark`: the body is
//! buffered, and no body callback arrives until the filter resumes the
//! stream itself. A filter cannot read that setting, so this measures it:
//!
//! - while it is unknown, a request whose body is held pauses its headers
//!   and *waits*; a body (or trailers) callback that arrives while the
//!   headers are paused proves the pause honoured, for good (the setting
//!   is part of the plugin's config, and a root context lives as long as
//!   its config);
//! - the root context's timer resumes a request that waited a whole tick
//!   period ([`TICK`]) without a body callback: its headers go ahead of
//!   the held body, as they do where the pause is not honoured, so no
//!   request stalls. That is a *miss*: the next held requests (1, then 3,
//!   7, … up to [`MAX_SKIP`] after each further miss) are not paused at
//!   all, then one is paused to measure again. A body that was merely slow
//!   to follow its headers costs one miss, not the feature.

use std::time::Duration;

/// The timer period while requests wait; a waiting request is resumed
/// after one to two periods without a body callback.
pub const TICK: Duration = Duration::from_millis(20);

/// The most held requests let through unpaused between two measurements.
pub const MAX_SKIP: u32 = 255;

/// What is known of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    /// Not measured yet, or measuring again after a miss.
    Unknown,
    /// A body callback arrived while the headers were paused.
    Honours,
    /// The last measurement was a miss: this many held requests go
    /// unpaused before the next one measures again.
    Skips(u32),
}

/// The measurement, one per root context (shared by its streams).
#[derive(Debug)]
pub struct HeaderHold {
    host: Host,
    misses: u32,
    /// Streams whose headers are paused and that no body callback has
    /// reached yet: (context id, the tick count when they paused).
    waiting: Vec<(u32, u32)>,
    ticks: u32,
    timer: bool,
}

impl Default for HeaderHold {
    fn default() -> Self {
        HeaderHold { host: Host::Unknown, misses: 0, waiting: Vec::new(), ticks: 0, timer: false }
    }
}

impl HeaderHold {
    /// A request whose body will be held is about to leave its headers
    /// callback: whether to pause its headers (true) or let them go ahead
    /// of the held body (false).
    pub fn pause(&mut self, context: u32) -> bool {
        match self.host {
            Host::Honours => true,
            Host::Skips(0) | Host::Unknown => {
                self.host = Host::Unknown;
                self.waiting.push((context, self.ticks));
                true
            }
            Host::Skips(n) => {
                self.host = Host::Skips(n - 1);
                false
            }
        }
    }

    /// A body or trailers callback reached a stream whose headers it
    /// paused. True when this is what proved the pause honoured.
    pub fn body_arrived(&mut self, context: u32) -> bool {
        let Some(at) = self.waiting.iter().position(|&(c, _)| c == context) else { return false };
        self.waiting.swap_remove(at);
        // Every other paused stream gets its body the same way.
        self.waiting.clear();
        self.misses = 0;
        let proved = self.host != Host::Honours;
        self.host = Host::Honours;
        proved
    }

    /// A timer tick: the streams that waited a whole period without a body
    /// callback, to be resumed now (their headers go ahead). Call
    /// [`HeaderHold::missed`] if any of them was resumed.
    pub fn expire(&mut self) -> Vec<u32> {
        self.ticks = self.ticks.wrapping_add(1);
        let now = self.ticks;
        let mut expired = Vec::new();
        self.waiting.retain(|&(context, since)| {
            let waited = now.wrapping_sub(since) >= 2;
            if waited {
                expired.push(context);
            }
            !waited
        });
        expired
    }

    /// A paused stream had to be resumed: the pause looks ignored.
    pub fn missed(&mut self) {
        self.misses = self.misses.saturating_add(1);
        let skip = 1u32.checked_shl(self.misses).map_or(MAX_SKIP, |n| (n - 1).min(MAX_SKIP));
        self.host = Host::Skips(skip);
    }

    /// Whether the timer must be started now (streams wait, it is off).
    pub fn start_timer(&mut self) -> bool {
        let start = !self.timer && !self.waiting.is_empty();
        self.timer |= start;
        start
    }

    /// Whether the timer must be stopped now (it runs, nothing waits).
    pub fn stop_timer(&mut self) -> bool {
        let stop = self.timer && self.waiting.is_empty();
        self.timer &= !stop;
        stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_callback_during_the_pause_proves_it_honoured_for_good() {
        let mut hold = HeaderHold::default();
        assert!(hold.pause(2));
        assert!(hold.start_timer(), "a waiting stream needs the timer");
        assert!(!hold.start_timer(), "started once");
        assert!(hold.body_arrived(2));
        assert!(hold.stop_timer());
        for context in 3..600 {
            assert!(hold.pause(context), "honoured: every held request pauses");
            assert!(!hold.start_timer(), "no measuring, no timer");
        }
        assert!(hold.expire().is_empty());
        assert!(!hold.body_arrived(3), "already proved");
    }

    #[test]
    fn a_stream_is_resumed_after_a_whole_tick_period_then_the_next_ones_skip_the_pause() {
        let mut hold = HeaderHold::default();
        assert!(hold.pause(7));
        assert!(hold.start_timer());
        assert_eq!(hold.expire(), Vec::<u32>::new(), "the first tick may come at once");
        assert_eq!(hold.expire(), vec![7]);
        hold.missed();
        assert!(hold.stop_timer());
        assert!(!hold.body_arrived(7), "a body after the resume proves nothing");
        // One miss: the next held request goes unpaused, the one after
        // measures again.
        assert!(!hold.pause(8));
        assert!(hold.pause(9));
        assert_eq!(hold.expire(), Vec::<u32>::new());
        assert_eq!(hold.expire(), vec![9]);
        hold.missed();
        let unpaused = (10..20).take_while(|&c| !hold.pause(c)).count();
        assert_eq!(unpaused, 3, "two misses: three skipped");
    }

    #[test]
    fn skips_are_bounded_and_a_later_success_restores_the_pause() {
        let mut hold = HeaderHold::default();
        for _ in 0..40 {
            hold.missed();
        }
        let mut context = 0;
        while !hold.pause(context) {
            context += 1;
        }
        assert_eq!(context, MAX_SKIP);
        assert!(hold.body_arrived(context));
        assert!(hold.pause(context + 1), "honoured now");
    }

    #[test]
    fn a_proof_releases_every_other_waiting_stream_from_the_timer() {
        let mut hold = HeaderHold::default();
        assert!(hold.pause(2) && hold.pause(3));
        assert!(hold.body_arrived(3));
        assert!(hold.expire().is_empty() && hold.expire().is_empty(), "2 is not resumed: its body will come");
    }
}
