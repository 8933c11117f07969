//! Method dispatch: the handshake rule, params decoding, and the call into the agent.

use super::peer::Peer;
use crate::agent::Agent;
use crate::agent::access_ops::{Caller, Need, need};
use crate::policy::approval::ApproverGuard;
use keyfob_proto::events::EVENT_NAMES;
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, Event, PROTOCOL_VERSION, RpcError};
use serde_json::Value;
use std::collections::HashSet;

/// Per-connection state.
pub struct Session {
    peer: Peer,
    caller: Caller,
    hello: bool,
    events: Option<HashSet<String>>,
    /// For a scoped agent key: the accounts whose events it may hear.
    scope: Option<Vec<String>>,
    /// Events for this connection, taken by the connection loop once subscribed.
    pub rx: Option<tokio::sync::broadcast::Receiver<Event>>,
    /// Held while this connection is an approver.
    approver: Option<ApproverGuard>,
}

/// What an approver hears.
const APPROVER_EVENTS: [&str; 5] = [
    "approval.requested",
    "approval.resolved",
    "signin.started",
    "signin.finished",
    "lock.changed",
];

impl Session {
    /// A session that has not said `hello` yet.
    pub fn new(peer: Peer) -> Self {
        // Without /proc (another OS), the client is known by its pid alone.
        let by_pid;
        let client = match &peer.client {
            Some(c) => c,
            None => {
                by_pid = super::identity::ClientIdentity {
                    pid: peer.pid.unwrap_or(0),
                    stable_id: format!("pid-{}", peer.pid.unwrap_or(0)),
                    ..Default::default()
                };
                &by_pid
            }
        };
        let caller = Caller {
            info: client.info(),
            frontend: client.is_keyfob_frontend(),
            stable_id: client.stable_id.clone(),
            key: None,
        };
        Self {
            peer,
            caller,
            hello: false,
            events: None,
            scope: None,
            rx: None,
            approver: None,
        }
    }

    /// The key of this client's rate-limit bucket: its stable identity.
    fn rate_key(&self) -> &str {
        &self.caller.stable_id
    }

    /// Whether this connection subscribed to `ev`.
    pub fn wants(&self, ev: &Event) -> bool {
        let in_scope = match (&self.scope, ev.subject()) {
            (Some(accounts), Some(subject)) => accounts.iter().any(|a| a == subject),
            _ => true,
        };
        in_scope
            && self
                .events
                .as_ref()
                .is_some_and(|set| set.is_empty() || set.contains(ev.name()))
    }
}

/// What the connection does after replying.
pub enum Outcome {
    /// Keep reading.
    Continue,
    /// Close the connection.
    Close,
    /// Stop the daemon.
    StopDaemon,
}

type Reply = Result<(Value, Outcome), (RpcError, Outcome)>;

/// Removes quoted values from a serde message: a mistyped field could otherwise echo a secret.
fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + 8..];
        rest = after.find('"').map_or("", |j| &after[j + 1..]);
    }
    out.push_str(rest);
    out
}

fn decode<M: Method>(params: Value) -> Result<M::Params, RpcError> {
    serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            ErrorKind::InvalidParams,
            format!("invalid params for {}: {}", M::NAME, scrub(&e.to_string())),
        )
    })
}

fn encode<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(ErrorKind::Internal, e.to_string()))
}

/// For an operation that widens access, exactly what it asks, as the person will read it.
fn widening(method: &str, params: &Value) -> Option<String> {
    if method != KeyCreate::NAME {
        return None;
    }
    let p: KeyCreateParams = serde_json::from_value(params.clone()).ok()?;
    let ops: Vec<String> = p.ops.iter().map(|o| o.to_string()).collect();
    let lifetime = match p.ttl_secs {
        Some(s) if s % 3600 == 0 => format!("for {} h", s / 3600),
        Some(s) if s % 60 == 0 => format!("for {} min", s / 60),
        Some(s) => format!("for {s} s"),
        None => "until revoked".to_owned(),
    };
    Some(format!(
        "create agent key {:?} allowing {} on {}, valid {lifetime}",
        p.name,
        ops.join(", "),
        p.accounts
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Methods whose every call goes to the audit log.
const AUDITED: [&str; 22] = [
    ApprovalDecide::NAME,
    ApprovalRevoke::NAME,
    KeyCreate::NAME,
    KeyRevoke::NAME,
    Lock::NAME,
    Unlock::NAME,
    TokenGet::NAME,
    SecretGet::NAME,
    SecretSet::NAME,
    SecretRemove::NAME,
    OtpCode::NAME,
    OtpAdd::NAME,
    OtpImport::NAME,
    OtpRemove::NAME,
    OtpUri::NAME,
    RecoveryAdd::NAME,
    RecoveryTake::NAME,
    AccountAdd::NAME,
    AccountRemove::NAME,
    LoginStart::NAME,
    Logout::NAME,
    Stop::NAME,
];

/// Runs one request, and records it in the audit log if it matters for security: the method,
/// the name it concerns (never a value), the client as the kernel reported it, the outcome.
pub async fn dispatch(
    agent: &std::sync::Arc<Agent>,
    session: &mut Session,
    method: &str,
    params: Value,
) -> Reply {
    let subject = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // `hello` is free: a client must always be able to learn why it is refused.
    if method != Hello::NAME
        && let Err(wait) = agent.limiter.check(session.rate_key())
    {
        agent.audit.record(crate::audit::Record {
            event: "rate_limited".into(),
            subject,
            client: Some(session.peer.audit_client()),
            outcome: "error".into(),
            detail: Some(method.to_owned()),
        });
        return Err((
            RpcError::new(
                ErrorKind::RateLimited,
                format!(
                    "too many requests from this program: retry after {} ms (limits are set under [limits] in the config)",
                    wait.as_millis().max(1)
                ),
            ),
            Outcome::Continue,
        ));
    }
    let reply = if method == Hello::NAME || !session.hello {
        run(agent, session, method, params).await
    } else {
        let need = need(method, &params);
        // A code for later is an admin operation on top of the otp rule: one allowed request
        // must not mint codes to be used once the person has looked away.
        let mut later = None;
        if method == OtpCode::NAME
            && let (Need::Use(_, name), Some(at)) = (need, params.get("at").and_then(Value::as_u64))
            && agent.otp_code_ahead(name, at).await
        {
            later = Some(Need::Admin(Some(name)));
        }
        let mut authorized = agent.authorize(&session.caller, method, need).await;
        if let (Ok(()), Some(admin)) = (&authorized, later) {
            authorized = agent.authorize(&session.caller, method, admin).await;
        }
        if authorized.is_ok()
            && let Some(detail) = widening(method, &params)
        {
            authorized = agent
                .authorize_widening(&session.caller, method, detail)
                .await;
        }
        match authorized {
            Ok(()) => run(agent, session, method, params).await,
            Err(e) => Err((e, Outcome::Continue)),
        }
    };
    let refused = matches!(&reply, Err((e, _)) if e.kind() == Some(ErrorKind::Forbidden));
    if AUDITED.contains(&method) || refused {
        let (outcome, detail) = match &reply {
            Ok(_) => ("ok", None),
            Err((e, _)) => ("error", e.kind().map(|k| format!("{k:?}"))),
        };
        agent.audit.record(crate::audit::Record {
            event: method.to_owned(),
            subject,
            client: Some(session.peer.audit_client()),
            outcome: outcome.into(),
            detail,
        });
    }
    reply
}

async fn run(
    agent: &std::sync::Arc<Agent>,
    session: &mut Session,
    method: &str,
    params: Value,
) -> Reply {
    let cont = |r: Result<Value, RpcError>| match r {
        Ok(v) => Ok((v, Outcome::Continue)),
        Err(e) => Err((e, Outcome::Continue)),
    };
    macro_rules! call {
        ($m:ty, |$p:ident| $body:expr) => {{
            let $p = match decode::<$m>(params) {
                Ok(p) => p,
                Err(e) => return Err((e, Outcome::Continue)),
            };
            cont(($body).map_err(RpcError::from).and_then(encode))
        }};
    }

    if method == Hello::NAME {
        let p = match decode::<Hello>(params) {
            Ok(p) => p,
            Err(e) => return Err((e, Outcome::Close)),
        };
        if p.version != PROTOCOL_VERSION {
            return Err((
                RpcError::new(
                    ErrorKind::VersionMismatch,
                    format!(
                        "this client speaks protocol {}, the running keyfobd speaks {PROTOCOL_VERSION}: restart the daemon (`keyfob daemon stop`) so the installed version starts",
                        p.version
                    ),
                ),
                Outcome::Close,
            ));
        }
        if let Some(key) = &p.key {
            match agent.present_key(key.expose()).await {
                Ok(hash) => session.caller.key = Some(hash),
                Err(e) => return Err((e, Outcome::Close)),
            }
        }
        session.hello = true;
        return cont(encode(HelloResult {
            version: PROTOCOL_VERSION,
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        }));
    }
    if !session.hello {
        return Err((
            RpcError::new(
                ErrorKind::HandshakeRequired,
                "send `hello` first, with the protocol version",
            ),
            Outcome::Continue,
        ));
    }

    match method {
        Subscribe::NAME => {
            let p = match decode::<Subscribe>(params) {
                Ok(p) => p,
                Err(e) => return Err((e, Outcome::Continue)),
            };
            if let Some(bad) = p.events.iter().find(|e| !EVENT_NAMES.contains(&e.as_str())) {
                return Err((
                    RpcError::new(
                        ErrorKind::InvalidParams,
                        format!(
                            "unknown event {bad:?}: known events are {}",
                            EVENT_NAMES.join(", ")
                        ),
                    ),
                    Outcome::Continue,
                ));
            }
            if let Some(hash) = &session.caller.key {
                match agent.key_event_scope(hash).await {
                    Ok(scope) => session.scope = scope,
                    Err(e) => return Err((e, Outcome::Continue)),
                }
            }
            session.events = Some(p.events.into_iter().collect());
            session.rx.get_or_insert_with(|| agent.subscribe());
            cont(Ok(Value::Object(Default::default())))
        }
        ApprovalListen::NAME => {
            if let Err(e) = decode::<ApprovalListen>(params) {
                return Err((e, Outcome::Continue));
            }
            // Subscribe before reading the pending list, so no request falls in between.
            session.rx.get_or_insert_with(|| agent.subscribe());
            let wanted = APPROVER_EVENTS.iter().map(|e| (*e).to_owned());
            match &mut session.events {
                None => session.events = Some(wanted.collect()),
                // An empty set already means every event.
                Some(set) if set.is_empty() => {}
                Some(set) => set.extend(wanted),
            }
            let (guard, result) = agent.approver_joined();
            session.approver = Some(guard);
            cont(encode(result))
        }
        ApprovalDecide::NAME => {
            // Keyfob's CLI answering: the `keyfob approve` process itself (not the client it
            // was started by) must not be the asker, nor one it started or that started it.
            let cli_approver = session
                .peer
                .client
                .as_ref()
                .filter(|c| c.via.is_some())
                .and(session.peer.pid);
            call!(ApprovalDecide, |p| agent
                .approval_decide(p, cli_approver)
                .await)
        }
        ApprovalList::NAME => call!(ApprovalList, |_p| Ok::<_, RpcError>(
            agent.approval_list().await
        )),
        ApprovalRevoke::NAME => call!(ApprovalRevoke, |p| agent.approval_revoke(p).await),
        KeyCreate::NAME => call!(KeyCreate, |p| agent.key_create(p).await),
        KeyList::NAME => call!(KeyList, |_p| Ok::<_, RpcError>(agent.key_list().await)),
        KeyRevoke::NAME => call!(KeyRevoke, |p| agent.key_revoke(p).await),
        Lock::NAME => call!(Lock, |_p| {
            agent.lock("command").await;
            Ok::<_, RpcError>(Empty {})
        }),
        Unlock::NAME => call!(Unlock, |p| agent.unlock(&session.caller, p).await),
        Status::NAME => call!(Status, |_p| Ok::<_, RpcError>(agent.status().await)),
        Stop::NAME => match decode::<Stop>(params) {
            Ok(_) => Ok((Value::Object(Default::default()), Outcome::StopDaemon)),
            Err(e) => Err((e, Outcome::Continue)),
        },
        OtpAdd::NAME => call!(OtpAdd, |p| agent.otp_add(p).await),
        OtpImport::NAME => call!(OtpImport, |p| agent.otp_import(p).await),
        OtpCode::NAME => call!(OtpCode, |p| agent.otp_code(p).await),
        OtpList::NAME => call!(OtpList, |_p| Ok::<_, RpcError>(agent.otp_list().await)),
        OtpRemove::NAME => call!(OtpRemove, |p| agent.otp_remove(p).await),
        OtpUri::NAME => call!(OtpUri, |p| agent.otp_uri(p).await),
        RecoveryAdd::NAME => call!(RecoveryAdd, |p| agent.recovery_add(p).await),
        RecoveryTake::NAME => call!(RecoveryTake, |p| agent.recovery_take(p).await),
        SecretSet::NAME => call!(SecretSet, |p| agent.secret_set(p).await),
        SecretGet::NAME => call!(SecretGet, |p| agent.secret_get(p).await),
        SecretList::NAME => call!(SecretList, |_p| Ok::<_, RpcError>(
            agent.secret_list().await
        )),
        SecretRemove::NAME => call!(SecretRemove, |p| agent.secret_remove(p).await),
        AccountAdd::NAME => call!(AccountAdd, |p| agent.account_add(p).await),
        AccountList::NAME => call!(AccountList, |_p| Ok::<_, RpcError>(
            agent.account_list().await
        )),
        AccountShow::NAME => call!(AccountShow, |p| agent.account_show(p).await),
        AccountRemove::NAME => call!(AccountRemove, |p| agent.account_remove(p).await),
        LoginStart::NAME => call!(LoginStart, |p| agent.login_start(p).await),
        LoginWait::NAME => call!(LoginWait, |p| agent.login_wait(p).await),
        TokenGet::NAME => call!(TokenGet, |p| agent.token_get(p).await),
        AuditTail::NAME => call!(AuditTail, |p| agent.audit_tail(p).await),
        AuditVerify::NAME => call!(AuditVerify, |_p| agent.audit_verify().await),
        Logout::NAME => call!(Logout, |p| agent.logout(p).await),
        other => Err((
            RpcError::new(
                ErrorKind::MethodNotFound,
                format!("unknown method {other:?}: see docs/protocol.md"),
            ),
            Outcome::Continue,
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_hides_string_values_but_keeps_field_names() {
        let m = "invalid type: string \"s3cr3t\", expected u64 at `digits`";
        let s = super::scrub(m);
        assert!(!s.contains("s3cr3t"));
        assert!(s.contains("`digits`"));
    }
}
