//! Drives one `tenure::Node` by the core's call protocol: feed it received
//! packets and timer expiries, and after each input drain its outputs with
//! the core's [`tenure::Executor`] (which persists the record before anything
//! after it and checks that nothing is sent that is not yet stored). What is
//! the firmware's own is [`NodeIo`]: the flash store, the link, event lines.

use embassy_futures::select::{select4, Either4};
use embassy_time::{Duration, Timer};
use embedded_storage_async::nor_flash::NorFlash;
use static_cell::StaticCell;
use tenure::{
    AsyncEffects, Auth, CommandError, Config, Destination, Event, ExecError, Executor, Member,
    Node, NodeId, Packet, Record, TermEnd,
};

use crate::cmdline::{Settings, BROADCAST, MAX_MEMBERS};
use crate::console::{Command, CommandReader};
use crate::flash::Counted;
#[cfg(not(feature = "eth"))]
use crate::link::{self, Receiver, Sender};
#[cfg(feature = "eth")]
use crate::net::{self as link, Receiver, Sender};
use crate::semihosting;
use crate::store::{FlashStore, MAX_VALUE};

const _: () = assert!(tenure::MAX_RECORD_SIZE <= MAX_VALUE);

/// The node type this firmware runs.
pub type TenureNode = Node<MAX_MEMBERS>;

/// The core's clock: embassy time in microseconds (its tick is 1 µs).
pub fn now() -> tenure::Instant {
    tenure::Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn to_embassy(t: tenure::Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_micros(t.as_micros())
}

/// Stops the node: it must not go on after failing to store its record.
fn halt(code: i32) -> ! {
    semihosting::exit(code)
}

/// The cluster configuration from the command line. Every member is a
/// candidate; the core's defaults (1 s lease, 1 % drift bound, 50 ms rounds
/// and backoff) apply unless the command line overrides them. Frames are
/// authenticated with the cluster key if one was given.
fn config(settings: &Settings, seed: u64) -> Result<Config<MAX_MEMBERS>, tenure::ConfigError> {
    let mut members: heapless::Vec<Member, MAX_MEMBERS> = heapless::Vec::new();
    for &id in &settings.members {
        // Cannot fail: both lists hold MAX_MEMBERS.
        let _ = members.push(Member::candidate(id));
    }
    let mut config = Config::new(settings.cluster, NodeId(settings.id), &members)?;
    config.seed = seed;
    config.renewal = settings.renewal;
    let ms = |v: u32| tenure::Duration::from_millis(u64::from(v));
    if let Some(v) = settings.timing.lease_ms {
        config.lease = ms(v);
    }
    if let Some(v) = settings.timing.round_ms {
        config.round_timeout = ms(v);
    }
    if let Some(v) = settings.timing.backoff_ms {
        config.max_backoff = ms(v);
    }
    config.auth = match settings.key {
        Some(key) => Auth::key(key),
        None => Auth::Insecure,
    };
    Ok(config)
}

fn reason(r: TermEnd) -> &'static str {
    match r {
        TermEnd::Expired => "expired",
        TermEnd::Released => "released",
        TermEnd::Superseded => "superseded",
        TermEnd::ClockRegression => "clock_regression",
    }
}

/// How often the counters are reported.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// Reports an event as one `EVENT` line on UART0; `at_us` is the node's
/// clock when the event was drained.
fn report(event: Event) {
    let at = now().as_micros();
    match event {
        Event::BecameMaster { token, term_end } => {
            event!(
                "EVENT became_master token={} term_end_us={} at_us={}",
                token,
                term_end.as_micros(),
                at
            );
        }
        Event::TermEnded { token, reason: r } => {
            event!(
                "EVENT term_ended token={} reason={} at_us={}",
                token,
                reason(r),
                at
            );
        }
        Event::MasterElected { node, token } => {
            event!("EVENT master node={} token={} at_us={}", node.0, token, at);
        }
        Event::MasterLost {
            node,
            token,
            reason: r,
        } => {
            event!(
                "EVENT master_lost node={} token={} reason={} at_us={}",
                node.0,
                token,
                reason(r),
                at
            );
        }
        Event::MembersChanged { version, members } => {
            event!(
                "EVENT members_changed version={} members={} at_us={}",
                version,
                members,
                at
            );
        }
        Event::MemberListDiffers { version, followed } => {
            event!(
                "EVENT member_list_differs version={} followed={} at_us={}",
                version.unwrap_or(0),
                u8::from(followed),
                at
            );
        }
    }
}

/// The record could not be stored: the node must stop.
#[derive(Clone, Copy, Debug)]
pub struct StoreFailed;

/// What the firmware does with the node's outputs, for the core's
/// [`Executor`]: the record to flash, packets onto the link, events as
/// `EVENT` lines on UART0.
pub struct NodeIo<F: NorFlash> {
    store: FlashStore<Counted<F>>,
    sender: Sender,
    /// Longest record store so far, in µs.
    persist_max_us: u64,
    /// Time spent storing records, in µs.
    persist_total_us: u64,
}

impl<F: NorFlash> AsyncEffects for NodeIo<F> {
    type Error = StoreFailed;

    async fn persist(&mut self, record: &Record) -> Result<(), StoreFailed> {
        // What was sent before this record goes out before it, as emitted.
        self.sender.flush();
        let started = embassy_time::Instant::now();
        // Encoded straight into the store's buffer: no copy of the record is
        // kept in this future.
        let stored = self
            .store
            .save_with(|buf| record.encode(buf).ok())
            .await
            .is_ok();
        let took = started.elapsed().as_micros();
        self.persist_max_us = self.persist_max_us.max(took);
        self.persist_total_us += took;
        if stored {
            Ok(())
        } else {
            Err(StoreFailed)
        }
    }

    async fn send(&mut self, to: NodeId, frame: &[u8], _: &Packet) -> Result<(), Self::Error> {
        self.sender.send(to.0, frame);
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.sender.flush();
        report(*event);
        Ok(())
    }
}

/// The node, in a static: at about 2 KiB it is the largest object in the
/// firmware, and it must be neither copied into a task's future nor held by
/// value across an `await` (futures keep every such value, each in its own
/// slot). Nothing else takes its place: there is one node per boot.
static NODE: StaticCell<TenureNode> = StaticCell::new();

/// How the node starts, from what the flash holds and the command line.
// One value, for the start only, and no heap to box the record into.
#[allow(clippy::large_enum_variant)]
enum Start {
    /// From its stored record.
    Restore(Record),
    /// For the first time: the flash is erased and `first_boot` was given.
    FirstBoot,
    /// The flash is erased and `rejoin` was given: it was wiped or replaced.
    Rejoin,
    /// The flash is erased and neither `first_boot` nor `rejoin` was given.
    NoRecord,
}

/// Exit code of a node whose flash holds no record, started without
/// `first_boot` or `rejoin`.
pub const EXIT_NO_RECORD: i32 = 8;

/// Starts the node from its stored record, or for the first time if there is
/// none and the command line says `first_boot`, into [`NODE`]. Halts if the
/// record is unreadable or belongs elsewhere, or if there is none without
/// `first_boot`: starting afresh would forget promises and could break
/// safety. Call once.
pub async fn start_node<F: NorFlash>(
    settings: &Settings,
    store: &mut FlashStore<Counted<F>>,
    seed: u64,
) -> &'static mut TenureNode
where
    F::Error: ShowIfText + FormatIfDefmt,
{
    let config = match config(settings, seed) {
        Ok(config) => config,
        Err(e) => {
            error!("bad configuration: {}", e);
            halt(2);
        }
    };
    let start = match store.load().await {
        Ok(Some(bytes)) => match Record::decode(bytes) {
            Ok(record) => {
                if settings.first_boot || settings.rejoin {
                    warn!("first_boot/rejoin ignored: the flash holds a record");
                }
                Start::Restore(record)
            }
            Err(e) => {
                error!("stored record unusable: {}", e);
                halt(4);
            }
        },
        Ok(None) if settings.first_boot => Start::FirstBoot,
        Ok(None) if settings.rejoin => {
            warn!("no record in flash: rejoining as a new incarnation (votes once the recovery rule allows)");
            Start::Rejoin
        }
        Ok(None) => Start::NoRecord,
        Err(e) => {
            error!("flash read failed: {}", e);
            halt(4);
        }
    };
    // Built where it is kept (as far as the constructors allow) and never
    // inside a future.
    NODE.init_with(move || {
        let node = match start {
            Start::Restore(record) => TenureNode::restore(config, record, now()),
            Start::FirstBoot => TenureNode::first_boot(config, now()),
            Start::Rejoin => TenureNode::rejoin(config, now()),
            Start::NoRecord => no_record(),
        };
        match node {
            Ok(node) => node,
            Err(e) => {
                error!("cannot start: {}", e);
                // A configuration the core refuses is the command line's
                // fault (2); a record it refuses, the flash's (4).
                halt(match e {
                    tenure::StartError::Config(_) => 2,
                    tenure::StartError::Record(_) => 4,
                });
            }
        }
    })
}

/// The flash holds no record and the command line said neither `first_boot`
/// nor `rejoin`: a node that stored records before (a replaced or wiped
/// flash) must not start from nothing, so it halts.
fn no_record() -> ! {
    error!("no record in flash: add first_boot for a node's very first start, or rejoin for a member whose flash was wiped; halting");
    halt(EXIT_NO_RECORD);
}

/// One node with its storage and link.
pub struct Runner<F: NorFlash> {
    node: &'static mut TenureNode,
    /// Executes the node's outputs; one per boot, like the node.
    exec: Executor,
    io: NodeIo<F>,
    receiver: Receiver,
    commands: CommandReader,
    /// Frames addressed to another node (normal on a bus).
    pub not_for_us: u32,
    /// Frames that arrived broken on the link (bad COBS, too long, or too
    /// short for an envelope); the core never sees them.
    pub link_errors: u32,
}

impl<F: NorFlash> Runner<F>
where
    F::Error: ShowIfText + FormatIfDefmt,
{
    /// Wraps the started `node` (see [`start_node`]) with its store and the
    /// link. Nothing is sent or stored yet: [`boot`](Self::boot) does that.
    pub fn new(node: &'static mut TenureNode, store: FlashStore<Counted<F>>) -> Self {
        if !node.config().auth.is_secure() {
            warn!("no key=: frames are NOT authenticated");
        }
        let others = node.config().destinations(Destination::All).map(|id| id.0);
        let io = NodeIo {
            store,
            sender: Sender::new(others),
            persist_max_us: 0,
            persist_total_us: 0,
        };
        Self {
            node,
            exec: Executor::new(),
            io,
            receiver: Receiver::new(),
            commands: CommandReader::new(),
            not_for_us: 0,
            link_errors: 0,
        }
    }

    /// Executes the node's first outputs, the new incarnation's record first,
    /// and reports the start.
    pub async fn boot(&mut self) {
        self.drain().await;
        let record = self.node.record();
        event!(
            "EVENT start id={} incarnation={} instance={}",
            self.node.id().0,
            record.incarnation(),
            record.instance()
        );
    }

    /// Runs the node forever.
    pub async fn run(&mut self) -> ! {
        let mut next_stats = embassy_time::Instant::now() + STATS_EVERY;
        loop {
            let deadline = self.node.poll_timeout();
            // Fire a due timer before taking more input, so a stream of frames
            // cannot hold back a renewal.
            if deadline.is_some_and(|t| t <= now()) {
                self.node.handle_timeout(now());
                self.drain().await;
                continue;
            }
            let deadline = deadline.map(to_embassy);
            let wait = async {
                match deadline {
                    Some(t) => Timer::at(t).await,
                    None => core::future::pending().await,
                }
            };
            // All branches are cancel-safe: the receiver keeps partial frames
            // in `self.receiver`, and the timers are re-armed on the next turn.
            let frame = self.receiver.next_frame();
            let command = self.commands.next();
            match select4(frame, wait, Timer::at(next_stats), command).await {
                Either4::First(None) => continue,
                Either4::First(Some(Err(_))) => {
                    self.link_errors += 1;
                    continue;
                }
                Either4::First(Some(Ok(envelope))) => match link::open_envelope(envelope) {
                    None => {
                        self.link_errors += 1;
                        continue;
                    }
                    Some((to, _)) if to != self.node.id().0 && to != BROADCAST => {
                        self.not_for_us += 1;
                        continue;
                    }
                    Some((_, sealed)) => {
                        // A dropped frame is counted under its reason in the
                        // node's stats (the `EVENT stats` line). Drain even
                        // then: a stale message still advances the node's
                        // clock, which may be due to act.
                        let _ = self.node.handle_frame(now(), sealed);
                    }
                },
                Either4::Second(()) => self.node.handle_timeout(now()),
                Either4::Third(()) => {
                    next_stats += STATS_EVERY;
                    self.report_stats();
                    continue;
                }
                Either4::Fourth(command) => self.command(command),
            }
            self.drain().await;
        }
    }

    /// Executes an operator command and reports the outcome.
    fn command(&mut self, command: Option<Command>) {
        let Some(command) = command else {
            event!("EVENT command name=unknown result=refused reason=unknown");
            return;
        };
        let now = now();
        let result = match command {
            Command::Release => self.node.release(now),
            Command::HandOver(to) => self.node.hand_over(now, NodeId(to)),
            Command::Campaign => self.node.campaign(now),
            Command::Stats => {
                self.report_stats();
                Ok(())
            }
        };
        match result {
            Ok(()) => event!("EVENT command name={} result=ok", command.name()),
            Err(e) => {
                let why = match e {
                    CommandError::NotMaster => "not_master",
                    CommandError::NotCandidate => "not_candidate",
                    CommandError::MasterAlive(_) => "master_alive",
                    CommandError::InvalidSuccessor(_) => "invalid_successor",
                    CommandError::Backlog => "backlog",
                };
                event!(
                    "EVENT command name={} result=refused reason={}",
                    command.name(),
                    why
                );
            }
        }
    }

    /// One `EVENT stats` line with the core's counters, the link's and the
    /// flash's (program and erase operations since boot, every key).
    fn report_stats(&mut self) {
        let wear = self.io.store.flash().wear();
        let s = self.node.stats();
        event!(
            "EVENT stats in={} out={} dropped={} bad_tag={} malformed={} stale={} backlog={} not_for_us={} link_errors={} persists={} persist_us_avg={} persist_us_max={} flash_writes={} flash_bytes={} flash_erases={} elections={} won={} renewals={} renewals_completed={} round_timeouts={} rejoining={} at_us={}",
            s.messages_in,
            s.messages_out,
            s.dropped.total(),
            s.dropped.bad_tag,
            s.dropped.malformed,
            s.dropped.stale,
            s.dropped.backlog,
            self.not_for_us,
            self.link_errors,
            s.persists,
            self.io.persist_total_us / u64::from(s.persists.max(1)),
            self.io.persist_max_us,
            wear.writes,
            wear.bytes,
            wear.erases,
            s.elections_started,
            s.elections_won,
            s.renewals,
            s.renewals_completed,
            s.round_timeouts,
            u8::from(self.node.is_rejoining()),
            now().as_micros()
        );
        #[cfg(feature = "eth")]
        link::report_stats(now().as_micros());
    }

    /// Executes the node's outputs in order. Halts if the record could not
    /// be stored, or if the core asked to send what is not yet stored (a bug
    /// in the core: the message was not sent).
    async fn drain(&mut self) {
        loop {
            let result = self.exec.drain_async(self.node, &mut self.io).await;
            self.io.sender.flush();
            match result {
                Ok(_) => return,
                Err(ExecError::Effects(StoreFailed)) => {
                    // SAFETY-OF-PROTOCOL: nothing after the record may leave
                    // the node (a promise or an acceptance it would forget).
                    error!("cannot store the record: halting");
                    halt(5);
                }
                Err(ExecError::Unpersisted(message)) => {
                    error!(
                        "refused to send {} before it is stored: halting",
                        message.kind()
                    );
                    halt(6);
                }
                // Cannot happen with the core's own packets; that one packet
                // is skipped and the rest drained.
                Err(ExecError::Encode(_)) => warn!("packet too large to send"),
            }
        }
    }
}

/// `defmt::Format` when logging through defmt, nothing otherwise.
#[cfg(feature = "defmt")]
pub trait FormatIfDefmt: defmt::Format {}
#[cfg(feature = "defmt")]
impl<T: defmt::Format> FormatIfDefmt for T {}
/// `defmt::Format` when logging through defmt, nothing otherwise.
#[cfg(not(feature = "defmt"))]
pub trait FormatIfDefmt {}
#[cfg(not(feature = "defmt"))]
impl<T> FormatIfDefmt for T {}

/// [`crate::fmt::Show`] for text logs, nothing with defmt.
#[cfg(not(feature = "defmt"))]
pub trait ShowIfText: crate::fmt::Show {}
#[cfg(not(feature = "defmt"))]
impl<T: crate::fmt::Show> ShowIfText for T {}
/// [`crate::fmt::Show`] for text logs, nothing with defmt.
#[cfg(feature = "defmt")]
pub trait ShowIfText {}
#[cfg(feature = "defmt")]
impl<T> ShowIfText for T {}
