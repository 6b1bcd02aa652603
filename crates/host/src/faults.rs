//! Failure injection for tests, read from `FJORD_FAULTS` by dispatchers.
//!
//! The syntax is a comma-separated list of
//! - `fail-after:<task-kind>:<n>`: the task fails right after its n-th journaled step is made,
//! - `pause-after:<task-kind>:<n>[:<ms>]`: the task logs `fault: paused` and sleeps for a
//!   minute (or `ms` milliseconds) after its n-th step (so a test can kill or stop the
//!   dispatcher at a known point),
//! - `pause-before-purge:<task-kind>`: a task that succeeded logs `fault: paused before the
//!   purge` and sleeps for a minute before it purges what it set aside,
//! - `corrupt-vhost:<host>`: the vhost rendered for that site gets a directive nginx rejects,
//! - `abandon:<task-kind>`: the task's worker ends after its script without recording the
//!   outcome (as a worker lost to a bug would), for the dispatcher to notice.
//!
//! It exists so that the rollback promise is tested at every step of every task, not just at
//! the steps that happen to fail in practice.

#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Vec<(String, String, String)>,
}

impl Faults {
    pub fn parse(spec: &str) -> Faults {
        let rules = spec
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .filter_map(|r| {
                let mut parts = r.trim().splitn(3, ':');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next().unwrap_or("").to_string(),
                ))
            })
            .collect();
        Faults { rules }
    }

    pub fn from_env() -> Faults {
        Faults::parse(&std::env::var("FJORD_FAULTS").unwrap_or_default())
    }

    /// The argument after the step number of the first rule for this step, if any rule.
    fn step_rule(&self, action: &str, kind: &str, step: u32) -> Option<&str> {
        self.rules.iter().find_map(|(a, k, rest)| {
            let (n, arg) = rest.split_once(':').unwrap_or((rest, ""));
            (a == action && k == kind && n.parse() == Ok(step)).then_some(arg)
        })
    }

    /// Whether a rule fails or pauses a task of this kind after one of its steps.
    pub fn acts_after_steps_of(&self, kind: &str) -> bool {
        self.rules
            .iter()
            .any(|(a, k, _)| k == kind && (a == "fail-after" || a == "pause-after"))
    }

    pub fn fail_after(&self, kind: &str, step: u32) -> bool {
        self.step_rule("fail-after", kind, step).is_some()
    }

    /// How long to pause after this step, if at all.
    pub fn pause_after(&self, kind: &str, step: u32) -> Option<std::time::Duration> {
        self.step_rule("pause-after", kind, step)
            .map(|ms| std::time::Duration::from_millis(ms.parse().unwrap_or(60_000)))
    }

    pub fn pause_before_purge(&self, kind: &str) -> bool {
        self.rules
            .iter()
            .any(|(a, k, _)| a == "pause-before-purge" && k == kind)
    }

    pub fn abandon(&self, kind: &str) -> bool {
        self.rules
            .iter()
            .any(|(a, k, _)| a == "abandon" && k == kind)
    }

    /// The site's php-fpm pool gets a line php-fpm rejects.
    pub fn corrupt_pool(&self, host: &str) -> bool {
        self.rules
            .iter()
            .any(|(a, h, _)| a == "corrupt-pool" && h == host)
    }

    pub fn corrupt_vhost(&self, host: &str) -> bool {
        self.rules
            .iter()
            .any(|(a, h, _)| a == "corrupt-vhost" && h == host)
    }
}
