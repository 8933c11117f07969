//! Method dispatch. The protocol's registry (`for_each_method!`) routes each request to its
//! handler; params are decoded once, into the method's type; enforcement authorizes what the
//! method declared it needs for those params; the result is serialised straight into a line
//! buffer that is wiped once written.

use super::peer::Peer;
use crate::agent::Agent;
use crate::policy::approval::ApproverGuard;
use crate::policy::enforce::Caller;
use keyfob_proto::codec::{LineBuf, response_line};
use keyfob_proto::events::{EVENT_NAMES, LockReason};
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, Event, PROTOCOL_VERSION, RpcError};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// Per-connection state.
pub struct Session {
    peer: Peer,
    /// The peer as audited, made once per connection.
    audit_client: std::sync::Arc<crate::audit::Client>,
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
            audit_client: peer.audit_client(),
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

    /// For a connection that presented an agent key: whether the key still holds, with its
    /// scope re-read, so a key revoked or expired after `subscribe` hears nothing more.
    pub async fn key_still_holds(&mut self, agent: &Agent) -> bool {
        let Some(hash) = &self.caller.key else {
            return true;
        };
        match agent.key_event_scope(hash).await {
            Ok(scope) => {
                self.scope = scope;
                true
            }
            Err(_) => false,
        }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep reading.
    Continue,
    /// Close the connection.
    Close,
    /// Stop the daemon.
    StopDaemon,
}

/// The reply to one request and what the connection does next.
pub struct Reply {
    /// The response line, `\n` included.
    pub line: LineBuf,
    /// What happens after it is sent.
    pub outcome: Outcome,
}

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

fn error_reply(id: &Value, error: RpcError, outcome: Outcome) -> Reply {
    Reply {
        line: response_line::<()>(id, Err(&error)),
        outcome,
    }
}

/// What a handler sees: the agent, this connection, and what to do after the reply.
struct Cx<'a> {
    agent: &'a Arc<Agent>,
    session: &'a mut Session,
    after: Outcome,
}

/// A method's handler. Every method in the registry has one, or the daemon does not build.
trait Serve: Method {
    /// Runs an authorized call.
    async fn serve(cx: &mut Cx<'_>, p: Self::Params) -> Result<Self::Result, RpcError>;
}

/// Runs one request, and records it in the audit log if it matters for security: the method,
/// the name it concerns (never a value), the client as the kernel reported it, the outcome.
pub async fn dispatch(
    agent: &Arc<Agent>,
    session: &mut Session,
    method: &str,
    id: &Value,
    params: &str,
) -> Reply {
    // `hello` is free: a client must always be able to learn why it is refused.
    if method != Hello::NAME
        && let Err(wait) = agent.limiter.check(session.rate_key())
    {
        agent.audit.record(crate::audit::Record {
            event: "rate_limited".into(),
            subject: None,
            client: Some(session.audit_client.clone()),
            outcome: "error".into(),
            detail: Some(method.to_owned()),
        });
        let error = RpcError::new(
            ErrorKind::RateLimited,
            format!(
                "too many requests from this program: retry after {} ms (limits are set under [limits] in the config)",
                wait.as_millis().max(1)
            ),
        );
        return error_reply(id, error, Outcome::Continue);
    }
    route(agent, session, method, id, params).await
}

macro_rules! route {
    ($($ty:ident),*) => {
        /// Routes `method` to its handler through the registry.
        async fn route(
            agent: &Arc<Agent>,
            session: &mut Session,
            method: &str,
            id: &Value,
            params: &str,
        ) -> Reply {
            match method {
                $($ty::NAME => call::<$ty>(agent, session, id, params).await,)*
                other => {
                    let error = RpcError::new(
                        ErrorKind::MethodNotFound,
                        format!("unknown method {other:?}: see docs/protocol.md"),
                    );
                    error_reply(id, error, Outcome::Continue)
                }
            }
        }
    };
}
keyfob_proto::for_each_method!(route);

/// One call of `M`: the handshake rule, one decode, authorization of the decoded params, the
/// handler, the audit record, and the reply line.
async fn call<M: Serve>(
    agent: &Arc<Agent>,
    session: &mut Session,
    id: &Value,
    params: &str,
) -> Reply {
    let hello = M::NAME == Hello::NAME;
    // A broken `hello` ends the connection; anything else leaves it open.
    let on_error = if hello {
        Outcome::Close
    } else {
        Outcome::Continue
    };
    if !hello && !session.hello {
        let error = RpcError::new(
            ErrorKind::HandshakeRequired,
            "send `hello` first, with the protocol version",
        );
        return error_reply(id, error, Outcome::Continue);
    }
    let p: M::Params = match serde_json::from_str(params) {
        Ok(p) => p,
        Err(e) => {
            let error = RpcError::new(
                ErrorKind::InvalidParams,
                format!("invalid params for {}: {}", M::NAME, scrub(&e.to_string())),
            );
            return error_reply(id, error, on_error);
        }
    };
    let need = M::need(&p);
    let subject = need.subject().map(str::to_owned);
    let result = match agent.authorize(&session.caller, M::NAME, need).await {
        Ok(()) => {
            let mut cx = Cx {
                agent,
                session,
                after: Outcome::Continue,
            };
            // Boxed, sized for this method: inline, every connection's task would be sized
            // for the largest method (an import, a sign-in), and the pages a request touches
            // are what it costs on a machine that has been quiet (bench/README.md).
            let r = Box::pin(M::serve(&mut cx, p)).await;
            let after = cx.after;
            r.map(|r| (r, after))
        }
        Err(e) => Err(e),
    };
    let refused = matches!(&result, Err(e) if e.kind() == Some(ErrorKind::Forbidden));
    if M::AUDITED || refused {
        let (outcome, detail) = match &result {
            Ok(_) => ("ok", None),
            Err(e) => ("error", e.kind().map(|k| format!("{k:?}"))),
        };
        agent.audit.record(crate::audit::Record {
            event: M::NAME.into(),
            subject,
            client: Some(session.audit_client.clone()),
            outcome: outcome.into(),
            detail,
        });
    }
    match &result {
        Ok((r, after)) => Reply {
            line: response_line(id, Ok(r)),
            outcome: *after,
        },
        Err(e) => Reply {
            line: response_line::<()>(id, Err(e)),
            outcome: on_error,
        },
    }
}

/// Handlers that pass the decoded params to the agent: `=> |agent, params| call` for a
/// fallible call, `=> |agent, params| always call` for one that cannot fail.
macro_rules! serve {
    () => {};
    ($ty:ident => |$agent:ident, $p:pat_param| always $body:expr; $($rest:tt)*) => {
        impl Serve for $ty {
            async fn serve(cx: &mut Cx<'_>, $p: Self::Params) -> Result<Self::Result, RpcError> {
                let $agent = cx.agent;
                Ok($body.await)
            }
        }
        serve! { $($rest)* }
    };
    ($ty:ident => |$agent:ident, $p:pat_param| $body:expr; $($rest:tt)*) => {
        impl Serve for $ty {
            async fn serve(cx: &mut Cx<'_>, $p: Self::Params) -> Result<Self::Result, RpcError> {
                let $agent = cx.agent;
                $body.await.map_err(RpcError::from)
            }
        }
        serve! { $($rest)* }
    };
}

serve! {
    ApprovalList => |a, _p| always a.approval_list();
    ApprovalRevoke => |a, p| a.approval_revoke(p);
    KeyCreate => |a, p| a.key_create(p);
    KeyList => |a, _p| always a.key_list();
    KeyRevoke => |a, p| a.key_revoke(p);
    Lock => |a, _p| always async {
        a.lock(LockReason::Command).await;
        Empty {}
    };
    Status => |a, _p| always a.status();
    OtpAdd => |a, p| a.otp_add(p);
    OtpImport => |a, p| a.otp_import(p);
    OtpCode => |a, p| a.otp_code(p);
    OtpList => |a, _p| always a.otp_list();
    OtpRemove => |a, p| a.otp_remove(p);
    OtpUri => |a, p| a.otp_uri(p);
    RecoveryAdd => |a, p| a.recovery_add(p);
    RecoveryTake => |a, p| a.recovery_take(p);
    SecretSet => |a, p| a.secret_set(p);
    SecretGet => |a, p| a.secret_get(p);
    SecretList => |a, _p| always a.secret_list();
    SecretRemove => |a, p| a.secret_remove(p);
    // Boxed, as the provider calls they make are ~10 KB futures, and a connection's task is
    // sized for the largest request it might run: idle connections stay small.
    AccountAdd => |a, p| Box::pin(a.account_add(p));
    AccountList => |a, _p| always a.account_list();
    AccountShow => |a, p| a.account_show(p);
    AccountRemove => |a, p| a.account_remove(p);
    LoginStart => |a, p| a.login_start(p);
    LoginWait => |a, p| a.login_wait(p);
    TokenGet => |a, p| a.token_get(p);
    AuditTail => |a, p| a.audit_tail(p);
    AuditVerify => |a, _p| a.audit_verify();
    Logout => |a, p| Box::pin(a.logout(p)); // Boxed: see AccountAdd.
}

impl Serve for Hello {
    async fn serve(cx: &mut Cx<'_>, p: HelloParams) -> Result<HelloResult, RpcError> {
        if p.version != PROTOCOL_VERSION {
            return Err(RpcError::new(
                ErrorKind::VersionMismatch,
                format!(
                    "this client speaks protocol {}, the running keyfobd speaks {PROTOCOL_VERSION}: restart the daemon (`keyfob daemon stop`) so the installed version starts",
                    p.version
                ),
            ));
        }
        if let Some(key) = &p.key {
            cx.session.caller.key = Some(cx.agent.present_key(key.expose()).await?);
        }
        cx.session.hello = true;
        Ok(HelloResult {
            version: PROTOCOL_VERSION,
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        })
    }
}

impl Serve for Subscribe {
    async fn serve(cx: &mut Cx<'_>, p: SubscribeParams) -> Result<Empty, RpcError> {
        if let Some(bad) = p.events.iter().find(|e| !EVENT_NAMES.contains(&e.as_str())) {
            return Err(RpcError::new(
                ErrorKind::InvalidParams,
                format!(
                    "unknown event {bad:?}: known events are {}",
                    EVENT_NAMES.join(", ")
                ),
            ));
        }
        if let Some(hash) = &cx.session.caller.key {
            cx.session.scope = cx.agent.key_event_scope(hash).await?;
        }
        cx.session.events = Some(p.events.into_iter().collect());
        cx.session.rx.get_or_insert_with(|| cx.agent.subscribe());
        Ok(Empty {})
    }
}

impl Serve for ApprovalListen {
    async fn serve(cx: &mut Cx<'_>, _p: Empty) -> Result<ListenResult, RpcError> {
        let session = &mut *cx.session;
        // Subscribe before reading the pending list, so no request falls in between.
        session.rx.get_or_insert_with(|| cx.agent.subscribe());
        let wanted = APPROVER_EVENTS.iter().map(|e| (*e).to_owned());
        match &mut session.events {
            None => session.events = Some(wanted.collect()),
            // An empty set already means every event.
            Some(set) if set.is_empty() => {}
            Some(set) => set.extend(wanted),
        }
        let (guard, result) = cx.agent.approver_joined();
        session.approver = Some(guard);
        Ok(result)
    }
}

impl Serve for ApprovalDecide {
    async fn serve(cx: &mut Cx<'_>, p: DecideParams) -> Result<Empty, RpcError> {
        // Keyfob's CLI answering: the `keyfob approve` process itself (not the client it
        // was started by) must not be the asker, nor one it started or that started it.
        let peer = &cx.session.peer;
        let cli_approver = peer
            .client
            .as_ref()
            .filter(|c| c.via.is_some())
            .and(peer.pid);
        Ok(cx.agent.approval_decide(p, cli_approver).await?)
    }
}

impl Serve for Unlock {
    async fn serve(cx: &mut Cx<'_>, p: UnlockParams) -> Result<Empty, RpcError> {
        cx.agent.unlock(&cx.session.caller, p).await
    }
}

impl Serve for Stop {
    async fn serve(cx: &mut Cx<'_>, _p: Empty) -> Result<Empty, RpcError> {
        cx.after = Outcome::StopDaemon;
        Ok(Empty {})
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
