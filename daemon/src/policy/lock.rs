//! The lock state machine: locked or unlocked, when it last served a credential, and when it
//! should lock by itself. The agent acts on its transitions (dropping tokens, locking the
//! vault); enforcement reads it before every credential and admin request.

use crate::config::LockConfig;
use keyfob_proto::events::LockReason;
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    locked: bool,
    last_use: Instant,
    unlocked_at: Instant,
}

/// A request met the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked;

/// Locked or unlocked, and the timers that lock it.
#[derive(Debug)]
pub struct LockMachine {
    state: Mutex<State>,
    /// Wakes the auto-lock loop when a transition moves its deadline.
    wake: Notify,
    config: LockConfig,
}

impl LockMachine {
    /// Unlocked, with the timers of `config` starting now.
    pub fn new(config: &LockConfig) -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                locked: false,
                last_use: now,
                unlocked_at: now,
            }),
            wake: Notify::new(),
            config: config.clone(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the agent is locked.
    pub fn locked(&self) -> bool {
        self.state().locked
    }

    /// Whether logind's session-lock and suspend signals should lock the agent.
    pub fn on_session_lock(&self) -> bool {
        self.config.on_session_lock.unwrap_or(true)
    }

    /// Locks; `false` when it already was.
    pub fn lock(&self) -> bool {
        let was = std::mem::replace(&mut self.state().locked, true);
        self.wake.notify_one();
        !was
    }

    /// Unlocks: both timers start again.
    pub fn unlock(&self) {
        {
            let mut st = self.state();
            st.locked = false;
            st.unlocked_at = Instant::now();
            st.last_use = Instant::now();
        }
        self.wake.notify_one();
    }

    /// Lets a request pass unless locked; a credential use (`use_`) resets the idle timer.
    pub fn pass(&self, use_: bool) -> Result<(), Locked> {
        let mut st = self.state();
        if st.locked {
            return Err(Locked);
        }
        if use_ {
            st.last_use = Instant::now();
        }
        Ok(())
    }

    /// What wakes the auto-lock loop.
    pub fn wake(&self) -> &Notify {
        &self.wake
    }

    /// When the agent should lock by itself next, and why.
    pub fn next_auto_lock(&self) -> Option<(Instant, LockReason)> {
        let st = self.state();
        if st.locked {
            return None;
        }
        let secs = std::time::Duration::from_secs;
        let idle = self
            .config
            .idle_timeout_secs
            .map(|s| (st.last_use + secs(s), LockReason::Idle));
        let age = self
            .config
            .max_unlocked_secs
            .map(|s| (st.unlocked_at + secs(s), LockReason::MaxAge));
        match (idle, age) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn next(cfg: &str) -> Option<LockReason> {
        let m = LockMachine::new(&Config::parse(cfg).unwrap_or_default().lock);
        m.next_auto_lock().map(|(_, why)| why)
    }

    #[test]
    fn the_earlier_of_idle_timeout_and_maximum_age_locks_first() {
        assert_eq!(next(""), None);
        assert_eq!(
            next("[lock]\nidle_timeout_secs = 60\nmax_unlocked_secs = 30\n"),
            Some(LockReason::MaxAge)
        );
        assert_eq!(
            next("[lock]\nidle_timeout_secs = 10\nmax_unlocked_secs = 30\n"),
            Some(LockReason::Idle)
        );
    }

    #[test]
    fn a_locked_machine_refuses_and_has_no_timer_until_unlocked() {
        let m = LockMachine::new(
            &Config::parse("[lock]\nidle_timeout_secs = 10\n")
                .unwrap()
                .lock,
        );
        assert!(m.lock());
        assert!(!m.lock());
        assert_eq!(m.pass(true), Err(Locked));
        assert!(m.next_auto_lock().is_none());
        m.unlock();
        assert_eq!(m.pass(true), Ok(()));
        assert!(m.next_auto_lock().is_some());
    }
}
