//! The supervisor against a fleet it cannot see: a store whose claims the
//! test answers and fetchers that only hand each job to the test. Every
//! step is a message the test sends and awaits, so the order in which the
//! supervisor hears of claims, announcements and outcomes is the test's.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, MessageResult, ResponseFuture};
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::*;
use crate::config::{Config, Overrides, Tab};
use crate::engine::aggregator::{ClaimPage, ClaimPages, ReleasePage};
use crate::lane::budget::Budget;
use crate::lane::ledger::Ledger;
use crate::lane::throttle::Throttle;
use crate::lane::{Counting, Lane, Opening};
use crate::source::fetch::FetchError;

/// What the fake store answers a claim with.
type Answer = Box<dyn FnMut(&ClaimPages) -> Result<Vec<Option<Claim>>, OutputError>>;

/// The store a fleet shares, as the supervisor sees it: each claim is
/// answered by `answer` and told to the test with when it came; a renewal
/// finds `renewal` (leased, if none), answered once `hold` opens if the
/// test holds it; a lease handed back is told to the test.
struct FakeStore {
    answer: Answer,
    claims: mpsc::UnboundedSender<(Instant, ClaimPages)>,
    renewal: Option<Claim>,
    hold: Option<oneshot::Receiver<()>>,
    released: mpsc::UnboundedSender<ReleasePage>,
}

/// The next renewal's answer waits until the sender is used or dropped.
#[derive(Message)]
#[rtype(result = "()")]
struct HoldRenewal(oneshot::Receiver<()>);

impl Handler<HoldRenewal> for FakeStore {
    type Result = ();

    fn handle(&mut self, HoldRenewal(hold): HoldRenewal, _: &mut Context<Self>) {
        self.hold = Some(hold);
    }
}

impl Actor for FakeStore {
    type Context = Context<Self>;
}

impl Handler<ClaimPages> for FakeStore {
    type Result = MessageResult<ClaimPages>;

    fn handle(&mut self, msg: ClaimPages, _: &mut Context<Self>) -> Self::Result {
        let answer = (self.answer)(&msg);
        let _ = self.claims.send((Instant::now(), msg));
        MessageResult(answer)
    }
}

impl Handler<ClaimPage> for FakeStore {
    type Result = ResponseFuture<Result<Claim, OutputError>>;

    fn handle(&mut self, _: ClaimPage, _: &mut Context<Self>) -> Self::Result {
        let claim = self.renewal.clone().unwrap_or(Claim::Leased {
            taken_over_from: None,
            token: LeaseToken(7),
        });
        let hold = self.hold.take();
        Box::pin(async move {
            if let Some(hold) = hold {
                let _ = hold.await;
            }
            Ok(claim)
        })
    }
}

impl Handler<ReleasePage> for FakeStore {
    type Result = ();

    fn handle(&mut self, r: ReleasePage, _: &mut Context<Self>) {
        let _ = self.released.send(r);
    }
}

/// A fetcher that fetches nothing: the test is told of each job and says
/// how it ended.
struct FakeFetcher {
    id: usize,
    jobs: mpsc::UnboundedSender<(usize, PageJob)>,
}

impl Actor for FakeFetcher {
    type Context = Context<Self>;
}

impl Handler<PageJob> for FakeFetcher {
    type Result = ();

    fn handle(&mut self, job: PageJob, _: &mut Context<Self>) {
        let _ = self.jobs.send((self.id, job));
    }
}

/// Runs `look` on the supervisor between two of its messages.
#[derive(Message)]
#[rtype(result = "()")]
struct Probe(Box<dyn FnOnce(&mut Supervisor) + Send>);

impl Handler<Probe> for Supervisor {
    type Result = ();

    fn handle(&mut self, Probe(look): Probe, _: &mut Context<Self>) {
        look(self)
    }
}

/// What the supervisor holds where, read between two of its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Where {
    queued: usize,
    claiming: usize,
    in_flight: usize,
    retrying: usize,
    /// Pages parked for another process.
    held: usize,
}

struct Harness {
    sup: Addr<Supervisor>,
    store: Addr<FakeStore>,
    jobs: mpsc::UnboundedReceiver<(usize, PageJob)>,
    claims: mpsc::UnboundedReceiver<(Instant, ClaimPages)>,
    released: mpsc::UnboundedReceiver<ReleasePage>,
    config: Config,
    lanes: Lanes,
    _dir: tempfile::TempDir,
}

/// Every claim leases the first pages wanted.
fn lease_all() -> Answer {
    Box::new(|c: &ClaimPages| Ok(Claim::first_leased(c.pages.len(), c.want)))
}

/// Held by `by` for an hour: long past any test.
fn held_by(by: &str) -> Claim {
    Claim::Held {
        by: by.into(),
        until: Utc::now() + chrono::Duration::hours(1),
    }
}

fn settled(page: u32, by: &str) -> Heard {
    Heard(Announcement::Settled {
        pass_id: 1,
        tag: "rust".into(),
        tab: Tab::Newest.as_str().into(),
        page,
        by: Some(by.into()),
    })
}

impl Harness {
    /// A supervisor named `w1` on a fleet's store answered by `answer`,
    /// with `fetchers` fake fetchers, hearing the fleet's announcements;
    /// a retry waits an hour.
    async fn start(fetchers: usize, answer: Answer, renewal: Option<Claim>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(
            "[tag_sets.t]\ntags = [\"rust\"]\npages = 3\n",
            "t",
            &Overrides::default(),
        )
        .unwrap();
        let mut n = 0;
        let lanes = Lanes::build(
            &config,
            |spec| -> Result<Arc<Lane>, std::convert::Infallible> {
                n += 1;
                let budget =
                    Budget::open(&dir.path().join(format!("budget{n}.sqlite")), 1000).unwrap();
                let counting = Counting {
                    ledger: Ledger::start(budget),
                    stalls: Default::default(),
                    give_up: Duration::from_secs(300),
                };
                Ok(Arc::new(Lane::new(
                    spec.key,
                    Throttle::new(1000.0, 100),
                    counting,
                    Opening::default(),
                    spec.serial,
                )))
            },
        )
        .unwrap();
        let (told, claims) = mpsc::unbounded_channel();
        let (handed_back, released) = mpsc::unbounded_channel();
        let store = FakeStore {
            answer,
            claims: told,
            renewal,
            hold: None,
            released: handed_back,
        }
        .start();
        let policy = RetryPolicy {
            base: Duration::from_secs(3600),
            ..RetryPolicy::from_config(&config)
        };
        let (tx, jobs) = mpsc::unbounded_channel();
        let mut sup = Supervisor::new(
            policy,
            "w1".into(),
            lanes.clone(),
            Some(Leases {
                claim_pages: store.clone().recipient(),
                claim_page: store.clone().recipient(),
                release: store.clone().recipient(),
            }),
            0,
        );
        for id in 0..fetchers {
            sup.add_fetcher(
                FakeFetcher {
                    id,
                    jobs: tx.clone(),
                }
                .start()
                .recipient(),
            );
        }
        let sup = sup.start();
        sup.send(Heard(Announcement::Listening)).await.unwrap();
        Harness {
            sup,
            store,
            jobs,
            claims,
            released,
            config,
            lanes,
            _dir: dir,
        }
    }

    fn job(&self, page: u32) -> PageJob {
        PageJob::new(&self.config, "rust", Tab::Newest, page, 15)
    }

    async fn submit(&self, job: PageJob) -> oneshot::Receiver<PageOutcome> {
        let (reply, rx) = oneshot::channel();
        self.sup.send(Submit { job, reply }).await.unwrap();
        rx
    }

    /// The next job handed to a fetcher.
    async fn handed_out(&mut self) -> (usize, PageJob) {
        self.jobs
            .recv()
            .await
            .expect("the fetchers live as long as the test")
    }

    async fn ended(&self, fetcher: usize, result: Result<PageReport, JobError>) {
        self.sup
            .send(JobEnded {
                fetcher,
                result,
                signals: None,
            })
            .await
            .unwrap();
    }

    async fn probe<T: Send + 'static>(
        &self,
        look: impl FnOnce(&mut Supervisor) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        self.sup
            .send(Probe(Box::new(move |act| {
                let _ = tx.send(look(act));
            })))
            .await
            .unwrap();
        rx.await.unwrap()
    }

    async fn place(&self) -> Where {
        self.probe(|act| Where {
            queued: act.frontier.pending(),
            claiming: act.claiming,
            in_flight: act.in_flight.len(),
            retrying: act.retrying.len(),
            held: act.held.len(),
        })
        .await
    }

    /// `job`'s page was not parked but handed out again at once: the
    /// settlement it was measured against had already been heard.
    async fn asked_about_again(&mut self, job: &PageJob) {
        let at = self.place().await;
        assert_eq!(at.held, 0, "parked for a settlement already heard: {at:?}");
        let (_, again) = self.handed_out().await;
        assert_eq!(again.ctx, job.ctx);
    }

    /// Until every claim sent is answered: claims go to the store and back
    /// outside the supervisor's mailbox, so this asks between its messages
    /// until none is out. A claim never answered fails the test rather
    /// than hanging it (the fake store answers at once, within a few turns).
    async fn claims_answered(&self) -> Where {
        const TURNS: usize = 10_000;
        for _ in 0..TURNS {
            let at = self.place().await;
            if at.claiming == 0 {
                return at;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "a claim still unanswered after {TURNS} turns: {:?}",
            self.place().await
        );
    }
}

/// The fetcher's renewal found the page another process's; that process's
/// write was heard before the fetcher's answer arrived, when nothing was
/// parked to wake. Measured against the count at the answer, the write
/// looked older than the lookup and the page waited out the holder's whole
/// lease; measured against the count at the lookup, it is asked at once.
#[actix_rt::test]
async fn a_page_settled_between_its_lookup_and_the_answer_is_asked_about_again_at_once() {
    let mut h = Harness::start(1, lease_all(), Some(held_by("w2"))).await;
    let _reply = h.submit(h.job(1)).await;
    let (fetcher, job) = h.handed_out().await;
    let renewed = h
        .sup
        .send(RenewLease {
            ctx: job.ctx.clone(),
        })
        .await
        .unwrap();
    let Ok(claim @ Claim::Held { .. }) = renewed else {
        panic!("the renewal finds the page held: {renewed:?}");
    };
    h.sup.send(settled(1, "w2")).await.unwrap();
    h.ended(fetcher, Err(JobError::Elsewhere(claim))).await;
    h.asked_about_again(&job).await;
}

/// The same for a write found fenced, whose lookup happens inside the
/// write: the count is the one taken when the page was handed out.
#[actix_rt::test]
async fn a_page_settled_while_its_fenced_write_was_answered_is_asked_about_again_at_once() {
    let mut h = Harness::start(1, lease_all(), None).await;
    let _reply = h.submit(h.job(1)).await;
    let (fetcher, job) = h.handed_out().await;
    h.sup.send(settled(1, "w2")).await.unwrap();
    h.ended(fetcher, Err(JobError::Elsewhere(held_by("w2"))))
        .await;
    h.asked_about_again(&job).await;
}

/// A settlement heard while the renewal's lookup is out (its answer held
/// back) may be one the answer does not reflect: the count that measures
/// it is the one taken when the renewal was sent, not when it was
/// answered, so the page found held is asked about again at once.
#[actix_rt::test]
async fn a_settlement_heard_while_the_renewal_is_out_wakes_the_page() {
    let mut h = Harness::start(1, lease_all(), Some(held_by("w2"))).await;
    let (open, hold) = oneshot::channel();
    h.store.send(HoldRenewal(hold)).await.unwrap();
    let _reply = h.submit(h.job(1)).await;
    let (fetcher, job) = h.handed_out().await;
    // Queued now, ahead of the announcement: the supervisor takes the
    // count and sends the lookup, then hears the settlement.
    let renewal = h.sup.send(RenewLease {
        ctx: job.ctx.clone(),
    });
    h.sup.send(settled(1, "w2")).await.unwrap();
    open.send(()).unwrap();
    let Ok(claim @ Claim::Held { .. }) = renewal.await.unwrap() else {
        panic!("the renewal finds the page held");
    };
    h.ended(fetcher, Err(JobError::Elsewhere(claim))).await;
    h.asked_about_again(&job).await;
}

/// A settlement heard before the renewal looked is one its answer
/// reflects: the page held by a third process waits for that one.
#[actix_rt::test]
async fn a_settlement_heard_before_the_renewal_looked_does_not_wake_the_page() {
    let mut h = Harness::start(1, lease_all(), Some(held_by("w3"))).await;
    let _reply = h.submit(h.job(1)).await;
    let (fetcher, job) = h.handed_out().await;
    h.sup.send(settled(1, "w2")).await.unwrap();
    let renewed = h.sup.send(RenewLease { ctx: job.ctx }).await.unwrap();
    let Ok(claim @ Claim::Held { .. }) = renewed else {
        panic!("the renewal finds the page held: {renewed:?}");
    };
    h.ended(fetcher, Err(JobError::Elsewhere(claim))).await;
    let at = h.place().await;
    assert_eq!((at.held, at.claiming, at.queued), (1, 0, 0), "{at:?}");
}

/// Two copies of one page (a failures file listing it twice, a library
/// caller submitting it twice) found held elsewhere: one job waits, and
/// the holder's write settles both futures.
#[actix_rt::test]
async fn a_page_submitted_twice_and_held_elsewhere_settles_both_futures() {
    let mut claims = 0;
    let answer: Answer = Box::new(move |c: &ClaimPages| {
        claims += 1;
        let claim = match claims {
            1 => held_by("w2"),
            _ => Claim::Done {
                ends_tag: false,
                by: Some("w2".into()),
            },
        };
        Ok(vec![Some(claim); c.pages.len()])
    });
    let h = Harness::start(2, answer, None).await;
    let mut first = h.submit(h.job(1)).await;
    let mut second = h.submit(h.job(1)).await;
    let at = h.claims_answered().await;
    assert_eq!(at.held, 1, "{at:?}");
    for (copy, reply) in [("first", &mut first), ("second", &mut second)] {
        assert!(
            matches!(reply.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            "the {copy} copy was settled while its page is held elsewhere"
        );
    }
    h.sup.send(settled(1, "w2")).await.unwrap();
    for reply in [first, second] {
        match reply.await {
            Ok(PageOutcome::Skipped { why, .. }) => assert_eq!(why, WHY_ELSEWHERE),
            other => panic!("expected skipped as done elsewhere, got {other:?}"),
        }
    }
}

/// A leased page retried later hands its lease back and waits its whole
/// backoff in the retry map: an announcement of the page (another process
/// took it meanwhile) does not send it out early.
#[actix_rt::test]
async fn a_retried_page_that_held_a_lease_waits_its_backoff_whatever_is_announced() {
    let mut h = Harness::start(1, lease_all(), None).await;
    let _reply = h.submit(h.job(1)).await;
    let (fetcher, job) = h.handed_out().await;
    assert!(job.lease.is_some(), "handed out under a lease");
    h.ended(fetcher, Err(JobError::Fetch(FetchError::Timeout)))
        .await;
    h.sup.send(settled(1, "w2")).await.unwrap();
    h.sup.send(Heard(Announcement::Listening)).await.unwrap();
    let at = h.place().await;
    assert_eq!(
        at,
        Where {
            queued: 0,
            claiming: 0,
            in_flight: 0,
            retrying: 1,
            held: 0
        }
    );
}

/// A page found held elsewhere after a stop (a fenced write answered after
/// the drain) is settled at once: nothing will ask about it again, and the
/// crawl must not wait for the holder's lease to end.
#[actix_rt::test]
async fn a_page_found_held_after_a_stop_is_settled_at_once() {
    let mut h = Harness::start(1, lease_all(), None).await;
    let mut reply = h.submit(h.job(1)).await;
    let (fetcher, _) = h.handed_out().await;
    h.sup.send(Drain).await.unwrap();
    h.ended(fetcher, Err(JobError::Elsewhere(held_by("w2"))))
        .await;
    match reply.try_recv() {
        Ok(PageOutcome::Skipped { why, .. }) => assert_eq!(why, WHY_DRAINED),
        other => panic!("expected skipped as drained at once, got {other:?}"),
    }
    assert_eq!(h.place().await.held, 0);
}

/// A claim that fails while the page's lane is paused is sent again when
/// the pause ends: not at once, where a store that keeps failing would be
/// asked in a loop until then.
#[actix_rt::test]
async fn a_claim_failed_during_a_pause_is_sent_again_when_the_pause_ends() {
    // The throttle's pause is on tokio's clock: paused, the test runs at
    // once and the pause ends when nothing else is left to do.
    tokio::time::pause();
    let mut h = Harness::start(
        1,
        Box::new(|_: &ClaimPages| Err(OutputError::NoStore)),
        None,
    )
    .await;
    let until = h
        .lanes
        .for_source(Source::Html)
        .throttle
        .pause_for(Duration::from_secs(1));
    let _reply = h.submit(h.job(1)).await;
    let (looked, first) = h.claims.recv().await.unwrap();
    assert_eq!(
        (first.want, looked < until),
        (0, true),
        "looked at during the pause"
    );
    let (again, _) = h.claims.recv().await.unwrap();
    assert!(
        again >= until,
        "sent again {:?} before the pause ended",
        until - again
    );
}

/// Every claim the store saw, answered or not, as the pages it offered.
fn offered(h: &mut Harness) -> Vec<Vec<u32>> {
    std::iter::from_fn(|| h.claims.try_recv().ok())
        .map(|(_, c)| c.pages.iter().map(|p| p.page).collect())
        .collect()
}

/// Two copies of one page submitted while a fetcher is busy: one job. The
/// PostgreSQL claim answered a page offered twice with two leases under one
/// token (mimicked here: every copy of a wanted page leased), and the copy
/// with no fetcher handed back the lease the other was being fetched under.
/// Now the page is offered once, fetched once, its lease kept, and both
/// futures resolve with its outcome.
#[actix_rt::test]
async fn two_copies_of_a_page_are_one_job_offered_once_and_fetched_once() {
    let answer: Answer = Box::new(|c: &ClaimPages| {
        let first = c.pages.iter().take(c.want).cloned().collect::<Vec<_>>();
        Ok(c.pages
            .iter()
            .map(|p| {
                first.contains(p).then_some(Claim::Leased {
                    taken_over_from: None,
                    token: LeaseToken(41),
                })
            })
            .collect())
    });
    let mut h = Harness::start(1, answer, None).await;
    let _other = h.submit(h.job(5)).await;
    let (fetcher, _) = h.handed_out().await;
    let first = h.submit(h.job(9)).await;
    let second = h.submit(h.job(9)).await;
    let done_elsewhere = || {
        Err(JobError::Elsewhere(Claim::Done {
            ends_tag: false,
            by: Some("w2".into()),
        }))
    };
    h.ended(fetcher, done_elsewhere()).await;
    let (fetcher, job) = h.handed_out().await;
    assert_eq!(job.ctx.page, 9);
    let at = h.claims_answered().await;
    assert_eq!((at.queued, at.in_flight), (0, 1), "{at:?}");
    for pages in offered(&mut h) {
        let mut once = pages.clone();
        once.dedup();
        assert_eq!(once, pages, "a page offered twice in one claim");
    }
    let released: Vec<_> = std::iter::from_fn(|| h.released.try_recv().ok())
        .filter(|r| r.ctx.page == 9)
        .collect();
    assert!(
        released.is_empty(),
        "the lease of the copy in flight was handed back: {released:?}"
    );
    h.ended(fetcher, done_elsewhere()).await;
    for reply in [first, second] {
        match reply.await {
            Ok(PageOutcome::Skipped { ctx, why, .. }) => {
                assert_eq!((ctx.page, why), (9, WHY_ELSEWHERE))
            }
            other => panic!("expected page 9 skipped as done elsewhere, got {other:?}"),
        }
    }
    assert_eq!(h.claims_answered().await.in_flight, 0);
    assert!(h.jobs.try_recv().is_err(), "page 9 fetched twice");
}

/// A page that waits for the one before it (an API or incremental pass),
/// submitted twice: one job. Parked twice, the second copy replaced the
/// first (whose future was dropped) and the page after it waited for ever
/// for the dropped copy to come back.
#[actix_rt::test]
async fn an_after_previous_page_submitted_twice_is_one_job_and_the_next_page_follows() {
    let mut h = Harness::start(1, lease_all(), None).await;
    let job = |page| PageJob {
        after_previous: true,
        ..h.job(page)
    };
    let done_elsewhere = || {
        Err(JobError::Elsewhere(Claim::Done {
            ends_tag: false,
            by: Some("w2".into()),
        }))
    };
    let _one = h.submit(job(1)).await;
    let first = h.submit(job(2)).await;
    let second = h.submit(job(2)).await;
    let _three = h.submit(job(3)).await;
    for page in [1, 2, 3] {
        // Asked between the supervisor's messages: whether the page went
        // out, rather than waiting for a page that never does.
        let at = h.claims_answered().await;
        assert_eq!(at.in_flight, 1, "page {page} not handed out: {at:?}");
        let (fetcher, job) = h.handed_out().await;
        assert_eq!(job.ctx.page, page);
        h.ended(fetcher, done_elsewhere()).await;
    }
    for reply in [first, second] {
        assert!(
            matches!(reply.await, Ok(PageOutcome::Skipped { ctx, .. }) if ctx.page == 2),
            "both futures of page 2 resolve with its outcome"
        );
    }
    assert!(h.jobs.try_recv().is_err(), "a page fetched twice");
}
