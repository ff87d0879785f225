//! What the demo shows while it works: one line per step, then bars for mailboxes synced
//! (mail and, when meetings are captured, the calendar) and activities captured with the
//! rate (indicatif, on stderr; hidden when stderr is not a terminal or the summary goes
//! out as JSON, where one line per step remains).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tributary_store::{CalendarState, LinkStatus, LinkView, Store, StoreError, TenantId};

pub struct Progress {
    bars: MultiProgress,
    /// Steps and notes are not printed (the emulators set up for `tributary bench`).
    quiet: bool,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        let target = if json || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress {
            bars: MultiProgress::with_draw_target(target),
            quiet: false,
        }
    }

    /// Shows nothing at all.
    pub fn quiet() -> Self {
        Progress {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            quiet: true,
        }
    }

    pub fn step(&self, text: &str) {
        if !self.quiet {
            eprintln!("==> {text}");
        }
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("    {text}");
        }
    }

    /// Shows mailboxes and activities until every link has settled (synced, or stopped
    /// with an error an admin must fix), its calendar too when `calendars` (the
    /// calendar runs in the link's job, after mail); answers how long that took.
    pub async fn watch_sync(
        &self,
        store: &Store,
        tenant: &TenantId,
        expected_activities: usize,
        calendars: bool,
    ) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let links = store.links(tenant).await?.len() as u64;
        let mailboxes = self.bars.add(ProgressBar::new(links));
        mailboxes.set_style(style(
            "mailboxes  {bar:30.cyan/blue} {pos}/{len} synced {msg}",
        ));
        let activities = self.bars.add(ProgressBar::new(expected_activities as u64));
        activities.set_style(style(
            "activities {bar:30.green/blue} {pos}/{len} captured, {msg}",
        ));
        let mut last_line = Instant::now();
        loop {
            let links = store.links(tenant).await?;
            let mut settled = 0;
            for link in &links {
                if !is_settled(link.status, link.last_summary.is_some()) {
                    continue;
                }
                if calendars
                    && !calendar_settled(link, &store.calendar_state(tenant, link.id).await?)
                {
                    continue;
                }
                settled += 1;
            }
            let errors = links.iter().filter(|l| is_error(l.status)).count();
            let captured = u64::try_from(store.count_activities(tenant).await?).unwrap_or(0);
            let rate = captured as f64 / started.elapsed().as_secs_f64().max(0.001);
            mailboxes.set_position(settled);
            mailboxes.set_message(if errors > 0 {
                format!("({errors} with errors)")
            } else {
                String::new()
            });
            activities.set_position(captured);
            activities.set_message(format!("{rate:.0}/s"));
            if self.bars.is_hidden() && !self.quiet && last_line.elapsed() > Duration::from_secs(2)
            {
                eprintln!(
                    "    {settled}/{} mailboxes synced, {captured}/{expected_activities} activities ({rate:.0}/s)",
                    links.len()
                );
                last_line = Instant::now();
            }
            if settled == links.len() as u64 {
                mailboxes.finish();
                activities.finish();
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn is_error(status: LinkStatus) -> bool {
    matches!(
        status,
        LinkStatus::AuthenticationError | LinkStatus::Unauthorized | LinkStatus::LinkageError
    )
}

/// The link's calendar synced in full at least once, or stopped with an error an admin
/// must fix, or never to run (the link's credentials were rejected: its job stops
/// before the calendar).
fn calendar_settled(link: &LinkView, calendar: &CalendarState) -> bool {
    if matches!(
        link.status,
        LinkStatus::AuthenticationError | LinkStatus::Unlinked
    ) {
        return true;
    }
    match calendar.status {
        LinkStatus::Idle => calendar.cursor.is_some(),
        LinkStatus::AuthenticationError | LinkStatus::Unauthorized | LinkStatus::Unlinked => true,
        LinkStatus::Pending | LinkStatus::Syncing | LinkStatus::LinkageError => false,
    }
}

/// Synced at least once and idle, or waiting for an admin, or unlinked.
fn is_settled(status: LinkStatus, has_synced: bool) -> bool {
    match status {
        LinkStatus::Idle => has_synced,
        LinkStatus::AuthenticationError | LinkStatus::Unauthorized | LinkStatus::Unlinked => true,
        LinkStatus::Pending | LinkStatus::Syncing | LinkStatus::LinkageError => false,
    }
}
