//! The broker's rules, each under test with a scripted provider, store and clock: no
//! network, no disk.

use super::*;
use std::sync::atomic::AtomicUsize;
use tokio::sync::{Notify, watch};

struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn advance(&self, d: Duration) {
        *lock(&self.0) += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *lock(&self.0)
    }
}

#[derive(Debug, PartialEq)]
enum Err {
    Broker(BrokerError),
    NeedsLogin(String),
    Provider,
    Disk,
}

impl std::fmt::Display for Err {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Err::Disk => f.write_str("No space left on device"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl From<BrokerError> for Err {
    fn from(e: BrokerError) -> Self {
        Err::Broker(e)
    }
}

/// A provider that rotates on every refresh ("r1", "r2", …), a store that can be made to
/// fail, and a gate that holds provider calls until opened.
struct Fake {
    stored: Mutex<Option<String>>,
    lasting: Mutex<Option<String>>,
    used: Mutex<Vec<String>>,
    asked: Mutex<Vec<CacheKey>>,
    calls: AtomicUsize,
    life: Duration,
    store_fails: AtomicBool,
    next: Mutex<Option<Refusal<Err>>>,
    open: watch::Sender<bool>,
    entered: Notify,
    /// What was asked of the backend, in order: "ready" (ready_to_store) and "request".
    order: Mutex<Vec<&'static str>>,
    /// Answer refreshes with the refresh token presented (a provider that does not rotate).
    next_same: Mutex<bool>,
}

impl Fake {
    fn new(life_secs: u64) -> Self {
        Self {
            stored: Mutex::new(Some("r0".into())),
            lasting: Mutex::default(),
            used: Mutex::default(),
            asked: Mutex::default(),
            calls: AtomicUsize::new(0),
            life: Duration::from_secs(life_secs),
            store_fails: AtomicBool::new(false),
            next: Mutex::default(),
            open: watch::Sender::new(true),
            entered: Notify::new(),
            order: Mutex::default(),
            next_same: Mutex::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn stored(&self) -> Option<String> {
        lock(&self.stored).clone()
    }
}

impl Backend for Fake {
    type Error = Err;

    async fn prepare(&self, _: &str) -> Result<Grant, Err> {
        Ok(Grant::RefreshToken)
    }

    async fn load(&self, _: &str) -> Result<Option<SecretString>, Err> {
        Ok(self.stored().map(SecretString::from))
    }

    async fn request(&self, key: &CacheKey, with: Credential<'_>) -> Result<Issued, Refusal<Err>> {
        let Credential::Refresh(rt) = with else {
            return Err(Refusal::Failed(Err::Provider));
        };
        lock(&self.order).push("request");
        lock(&self.asked).push(key.clone());
        lock(&self.used).push(rt.expose_secret().to_owned());
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.entered.notify_one();
        let _ = self.open.subscribe().wait_for(|o| *o).await;
        if let Some(r) = lock(&self.next).take() {
            return Err(r);
        }
        Ok(Issued {
            access: SecretString::from(format!("a{n}")),
            token_type: "Bearer".into(),
            expires_in: Some(self.life),
            scopes: vec![],
            id_token: None,
            claims: None,
            refresh_token: Some(SecretString::from(if *lock(&self.next_same) {
                rt.expose_secret().to_owned()
            } else {
                format!("r{n}")
            })),
            fields: Default::default(),
        })
    }

    fn ready_to_store(&self, _: &str) {
        lock(&self.order).push("ready");
    }

    async fn store(&self, _: &str, rt: &SecretString) -> Result<(), Err> {
        if self.store_fails.load(Ordering::SeqCst) {
            return Err(Err::Disk);
        }
        *lock(&self.stored) = Some(rt.expose_secret().to_owned());
        Ok(())
    }

    async fn delete(&self, _: &str) -> Result<(), Err> {
        *lock(&self.stored) = None;
        *lock(&self.lasting) = None;
        Ok(())
    }

    async fn load_lasting(&self, _: &str) -> Result<Option<SecretString>, Err> {
        Ok(lock(&self.lasting).clone().map(SecretString::from))
    }

    async fn store_lasting(&self, _: &str, t: &SecretString) -> Result<(), Err> {
        *lock(&self.lasting) = Some(t.expose_secret().to_owned());
        *lock(&self.stored) = None;
        Ok(())
    }

    fn unsaved(&self, _: &str, _: &str) {}

    async fn settled(&self, _: &str, _: &mut Issued) {}

    async fn ended(&self, a: &str, why: &str) -> Err {
        Err::NeedsLogin(format!("{why}: keyfob login {a}"))
    }
}

fn setup(life_secs: u64) -> (Arc<ManualClock>, Broker, Fake) {
    let clock = Arc::new(ManualClock(Mutex::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )));
    let broker = Broker::new(clock.clone());
    (clock, broker, Fake::new(life_secs))
}

/// An answer of `access`, living an hour, without a rotated refresh token.
fn issued_hour(access: &str) -> Issued {
    Issued {
        access: SecretString::from(access),
        token_type: "Bearer".into(),
        expires_in: Some(Duration::from_secs(3600)),
        scopes: vec![],
        id_token: None,
        claims: None,
        refresh_token: None,
        fields: Default::default(),
    }
}

const MIN_TTL: Freshness = Freshness::MinTtl(Duration::from_secs(60));

fn access(t: &CachedToken) -> String {
    t.access.expose_secret().to_owned()
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_before_the_caller_gets_the_access_token() {
    let (_, broker, fake) = setup(3600);
    let t = broker
        .token(&CacheKey::account("w"), MIN_TTL, &fake)
        .await
        .unwrap();
    assert_eq!(access(&t), "a1");
    assert_eq!(fake.stored().as_deref(), Some("r1"));
}

#[tokio::test]
async fn the_store_is_made_ready_while_the_provider_answers_a_refresh_that_will_rotate() {
    let (clock, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    // Whether the provider rotates is learnt from the first refresh.
    broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(*lock(&fake.order), ["request"]);
    clock.advance(Duration::from_secs(3600));
    broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(*lock(&fake.order), ["request", "ready", "request"]);
    // A refresh that did not rotate: the next one has nothing to store, and a locked
    // keychain must not be asked to open for it.
    *lock(&fake.next_same) = true;
    clock.advance(Duration::from_secs(3600));
    broker.token(&key, MIN_TTL, &fake).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(
        *lock(&fake.order),
        ["request", "ready", "request", "ready", "request", "request"]
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_that_cannot_be_stored_is_the_only_one_used_from_then_on() {
    let (clock, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    fake.store_fails.store(true, Ordering::SeqCst);
    let e = broker.token(&key, MIN_TTL, &fake).await.unwrap_err();
    assert!(
        matches!(&e, Err::Broker(BrokerError::Unsaved { cause, .. }) if cause.contains("No space")),
        "{e:?}"
    );
    assert_eq!(
        broker.unsaved(),
        vec![("w".into(), "No space left on device".into())]
    );
    // While the store fails, no provider call is made (it would rotate again, unsaved).
    assert!(broker.token(&key, MIN_TTL, &fake).await.is_err());
    assert_eq!(fake.calls(), 1);
    // The store works again: the kept token is stored first, then used.
    fake.store_fails.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(1));
    let t = broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(access(&t), "a2");
    assert_eq!(*lock(&fake.used), vec!["r0", "r1"]);
    assert_eq!(fake.stored().as_deref(), Some("r2"));
    assert!(broker.unsaved().is_empty());
}

#[tokio::test]
async fn refresh_ahead_stores_a_kept_rotated_token_once_the_store_works() {
    let (_, broker, fake) = setup(3600);
    fake.store_fails.store(true, Ordering::SeqCst);
    let _ = broker.token(&CacheKey::account("w"), MIN_TTL, &fake).await;
    fake.store_fails.store(false, Ordering::SeqCst);
    broker.refresh_ahead(&fake).await;
    assert_eq!(fake.stored().as_deref(), Some("r1"));
    assert!(broker.unsaved().is_empty());
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn cache_hits_share_the_cached_secrets_instead_of_copying_them_per_caller() {
    let (_, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    let mut with_id = issued_hour("a1");
    with_id.id_token = Some(SecretString::from("id1"));
    broker.cache_issued(&key, with_id);
    let first = broker.token(&key, MIN_TTL, &fake).await.unwrap();
    let second = broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(fake.calls(), 0, "both were cache hits");
    // One copy of each secret however many callers hold the token: fewer copies to wipe.
    assert!(Arc::ptr_eq(&first.access, &second.access));
    let (Some(a), Some(b)) = (&first.id_token, &second.id_token) else {
        panic!("the cached ID token was not handed out");
    };
    assert!(Arc::ptr_eq(a, b));
    assert!(Arc::ptr_eq(&first.fields, &second.fields));
}

#[tokio::test]
async fn concurrent_callers_at_expiry_share_one_refresh() {
    let (_, broker, fake) = setup(4);
    let key = CacheKey::account("w");
    let calls = (0..300).map(|_| broker.token(&key, MIN_TTL, &fake));
    let tokens = futures::future::join_all(calls).await;
    assert!(
        tokens
            .iter()
            .all(|t| t.as_ref().map(access).as_deref() == Ok("a1"))
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn callers_waiting_at_the_gate_are_all_served_once_a_token_is_cached_not_one_by_one() {
    let (_, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    // The gate is held (a refresh or a sign-in at work) while callers pile up behind it.
    let held = broker.gate("w").lock_owned().await;
    let waiting = futures::future::join_all((0..50).map(|_| broker.token(&key, MIN_TTL, &fake)));
    tokio::pin!(waiting);
    assert!(
        futures::poll!(&mut waiting).is_pending(),
        "nothing cached yet"
    );
    broker.cache_issued(&key, issued_hour("a9"));
    // Every caller has its token while the gate is still held: none waited for a hand-over.
    let std::task::Poll::Ready(tokens) = futures::poll!(&mut waiting) else {
        panic!("the waiting callers were not told of the cached token");
    };
    assert!(
        tokens
            .iter()
            .all(|t| t.as_ref().map(access).as_deref() == Ok("a9"))
    );
    assert_eq!(fake.calls(), 0);
    drop(held);
}

#[tokio::test]
async fn a_waiter_keeps_its_place_at_the_gate_when_news_does_not_serve_its_key() {
    let (_, broker, fake) = setup(3600);
    let key = |scope: &str| CacheKey::new("w", &[scope.to_owned()], None);
    let held = broker.gate("w").lock_owned().await;
    let (x, y, account) = (key("x"), key("y"), CacheKey::account("w"));
    let first = broker.token(&x, MIN_TTL, &fake);
    let second = broker.token(&y, MIN_TTL, &fake);
    let own = broker.token(&account, MIN_TTL, &fake);
    tokio::pin!(first, second, own);
    // Queued in this order behind the held gate.
    assert!(futures::poll!(&mut first).is_pending());
    assert!(futures::poll!(&mut second).is_pending());
    assert!(futures::poll!(&mut own).is_pending());
    // A token for the account's own key: news for everyone, serving only `own`.
    broker.cache_issued(&CacheKey::account("w"), issued_hour("a9"));
    assert!(futures::poll!(&mut own).is_ready());
    // The two others look at the news, the later one first; neither is served.
    assert!(futures::poll!(&mut second).is_pending());
    assert!(futures::poll!(&mut first).is_pending());
    // The gate opens: the caller that came first refreshes first.
    fake.open.send_replace(false);
    drop(held);
    let _ = futures::poll!(&mut second);
    let _ = futures::poll!(&mut first);
    assert_eq!(*lock(&fake.asked), vec![key("x")]);
    fake.open.send_replace(true);
    let (a, b) = tokio::join!(first, second);
    assert!(a.is_ok() && b.is_ok());
}

#[tokio::test]
async fn a_client_refusing_every_new_token_gets_one_replacement_per_ten_seconds() {
    let (clock, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    let mut current = access(&broker.token(&key, MIN_TTL, &fake).await.unwrap());
    let mut replaced = Vec::new();
    // A looping client refuses whatever it gets, once a second for 25 s.
    for _ in 0..25 {
        let want = broker.after_refusal(&key, &current, MIN_TTL);
        let next = access(&broker.token(&key, want, &fake).await.unwrap());
        if next != current {
            replaced.push(next.clone());
        }
        current = next;
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(replaced, ["a2", "a3", "a4"], "at 0 s, 10 s and 20 s");
    assert_eq!(fake.calls(), 4);
    // A refusal of a token that is no longer the cached one changes nothing.
    let want = broker.after_refusal(&key, "a1", MIN_TTL);
    assert_eq!(want, MIN_TTL);
}

#[tokio::test]
async fn tokens_shorter_lived_than_min_ttl_get_at_most_one_refresh_per_lifetime() {
    let (clock, broker, fake) = setup(60);
    let key = CacheKey::account("w");
    for _ in 0..20 {
        broker.token(&key, MIN_TTL, &fake).await.unwrap();
        clock.advance(Duration::from_secs(2));
    }
    // 40 s of calls on 60 s tokens: the first call's refresh only.
    assert_eq!(fake.calls(), 1);
    clock.advance(Duration::from_secs(14));
    let t = broker.token(&key, MIN_TTL, &fake).await.unwrap();
    assert_eq!(fake.calls(), 2, "a token with 6 s of 60 left is replaced");
    assert!(t.expires_at.unwrap() > clock.now());
}

#[tokio::test]
async fn a_waiter_for_another_cache_key_is_not_handed_an_expired_token() {
    let (clock, broker, fake) = setup(3600);
    let own = CacheKey::account("w");
    let scoped = CacheKey::new("w", &["api".into()], None);
    broker.token(&scoped, MIN_TTL, &fake).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    // The scoped token has expired; a refresh of the account's own token is in flight.
    fake.open.send_replace(false);
    let (own_t, scoped_t) = tokio::join!(broker.token(&own, MIN_TTL, &fake), async {
        fake.entered.notified().await;
        let waiter = broker.token(&scoped, MIN_TTL, &fake);
        fake.open.send_replace(true);
        waiter.await
    });
    own_t.unwrap();
    let scoped_t = scoped_t.unwrap();
    assert!(
        scoped_t.expires_at.unwrap() > clock.now() + Duration::from_secs(60),
        "the waiter got a token that does not satisfy its min_ttl"
    );
    assert_eq!(fake.calls(), 3);
}

/// Asks for account "w"'s turn while a refresh of its own token is at the provider; the
/// refresh's outcome, and the turn (granted only once that refresh has finished).
async fn turn_during_refresh<'a>(
    broker: &'a Broker,
    fake: &Fake,
) -> (Result<CachedToken, Err>, Turn<'a>) {
    fake.open.send_replace(false);
    let key = CacheKey::account("w");
    tokio::join!(broker.token(&key, MIN_TTL, fake), async {
        fake.entered.notified().await;
        let turn = broker.turn("w");
        fake.open.send_replace(true);
        turn.await
    })
}

#[tokio::test]
async fn a_sign_in_during_a_refresh_waits_for_it_and_its_grant_is_the_one_kept() {
    let (_, broker, fake) = setup(3600);
    let (refreshed, mut turn) = turn_during_refresh(&broker, &fake).await;
    refreshed.unwrap();
    // The refresh finished (and stored its rotation) before the sign-in got its turn.
    assert_eq!(fake.stored().as_deref(), Some("r1"));
    turn.store(&fake, &SecretString::from("signed-in"))
        .await
        .unwrap();
    turn.install(issued_hour("from-sign-in"));
    assert_eq!(fake.stored().as_deref(), Some("signed-in"));
    let t = broker
        .token(&CacheKey::account("w"), MIN_TTL, &fake)
        .await
        .unwrap();
    assert_eq!(access(&t), "from-sign-in");
}

#[tokio::test]
async fn removal_during_a_refresh_is_not_undone_by_it() {
    let (_, broker, fake) = setup(3600);
    let key = CacheKey::account("w");
    let (refreshed, mut turn) = turn_during_refresh(&broker, &fake).await;
    turn.remove(&fake).await.unwrap();
    drop(turn);
    refreshed.unwrap();
    assert_eq!(
        fake.stored(),
        None,
        "the finished refresh recreated the item"
    );
    assert!(broker.cached(&key).is_none());
    let e = broker.token(&key, MIN_TTL, &fake).await.unwrap_err();
    assert_eq!(
        e,
        Err::Broker(BrokerError::NoRefreshToken {
            account: "w".into()
        })
    );
}

#[tokio::test]
async fn a_grant_ended_at_the_provider_needs_a_sign_in_and_forgets_kept_tokens() {
    let (_, broker, fake) = setup(3600);
    fake.store_fails.store(true, Ordering::SeqCst);
    let key = CacheKey::account("w");
    let _ = broker.token(&key, MIN_TTL, &fake).await;
    fake.store_fails.store(false, Ordering::SeqCst);
    *lock(&fake.next) = Some(Refusal::GrantEnded("invalid_grant".into()));
    let e = broker.token(&key, MIN_TTL, &fake).await.unwrap_err();
    assert_eq!(e, Err::NeedsLogin("invalid_grant: keyfob login w".into()));
    assert!(broker.unsaved().is_empty());
}

#[tokio::test]
async fn a_stop_waits_for_the_refresh_in_flight_and_starts_no_new_one() {
    let (clock, broker, fake) = setup(3600);
    fake.open.send_replace(false);
    let key = CacheKey::account("w");
    let (refreshed, ()) = tokio::join!(broker.token(&key, MIN_TTL, &fake), async {
        fake.entered.notified().await;
        let stop = broker.stop(&fake);
        tokio::pin!(stop);
        // Its first step marks the broker stopping and starts waiting for the refresh.
        assert!(futures::poll!(stop.as_mut()).is_pending());
        fake.open.send_replace(true);
        stop.await;
        assert_eq!(
            fake.stored().as_deref(),
            Some("r1"),
            "stopped before the store"
        );
    });
    refreshed.unwrap();
    clock.advance(Duration::from_secs(3600));
    let e = broker.token(&key, MIN_TTL, &fake).await.unwrap_err();
    assert_eq!(e, Err::Broker(BrokerError::Stopping));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn refresh_ahead_replaces_an_in_use_token_near_expiry_once() {
    let (clock, broker, fake) = setup(600);
    let key = CacheKey::account("w");
    broker.touch("w");
    broker.token(&key, MIN_TTL, &fake).await.unwrap();
    broker.refresh_ahead(&fake).await;
    assert_eq!(fake.calls(), 1, "nothing due yet");
    clock.advance(Duration::from_secs(530));
    broker.refresh_ahead(&fake).await;
    broker.refresh_ahead(&fake).await;
    assert_eq!(fake.calls(), 2);
    assert_eq!(access(&broker.cached(&key).unwrap()), "a2");
}

#[tokio::test]
async fn a_lasting_access_token_is_the_grant_served_without_a_provider_call() {
    let (_, broker, fake) = setup(3600);
    {
        let mut turn = broker.turn("w").await;
        turn.store_lasting(&fake, &SecretString::from("gho_lasting"))
            .await
            .unwrap();
    }
    assert_eq!(
        fake.stored(),
        None,
        "the old refresh token outlived the new grant"
    );
    // A fresh broker (a restarted daemon) serves the stored token, with no provider call.
    let broker = Broker::new(Arc::new(SystemClock));
    let t = broker
        .token(&CacheKey::account("w"), MIN_TTL, &fake)
        .await
        .unwrap();
    assert_eq!(access(&t), "gho_lasting");
    assert_eq!(t.expires_at, None);
    assert_eq!(fake.calls(), 0);
    // It cannot be narrowed to other scopes.
    let narrow = CacheKey {
        account: "w".into(),
        scopes: vec!["repo".into()],
        audience: None,
    };
    let e = broker.token(&narrow, MIN_TTL, &fake).await.unwrap_err();
    assert!(
        matches!(e, Err::Broker(BrokerError::NotNarrowable { .. })),
        "{e:?}"
    );
    // Sign-out removes it.
    broker.turn("w").await.remove(&fake).await.unwrap();
    assert!(
        broker
            .token(&CacheKey::account("w"), MIN_TTL, &fake)
            .await
            .is_err()
    );
}
