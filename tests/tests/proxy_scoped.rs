//! async_scoped_session's generated proxy block: the committed snapshot is current, and every
//! public `AsyncSession` member is proxied or deliberately left out (SQLAlchemy's
//! `test_attributes`).

use std::collections::BTreeSet;

use session_tools::proxy::{SNAPSHOT, SNAPSHOT_SOURCES, scoped_snapshot, workspace_root};

#[test]
fn the_committed_snapshot_is_current() {
    let root = workspace_root();
    let fresh = scoped_snapshot(&root).unwrap();
    let committed = std::fs::read_to_string(root.join(SNAPSHOT)).unwrap_or_default();
    if fresh != committed {
        let diff: Vec<String> = fresh
            .lines()
            .zip(committed.lines().chain(std::iter::repeat("")))
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  now:       {a}\n  committed: {b}", i + 1))
            .collect();
        panic!(
            "{SNAPSHOT} is stale; regenerate it with `cargo run -p session-tools -- proxy write`\n{}",
            diff.join("\n")
        );
    }
}

/// Public members of `AsyncSession` that the scoped session does not proxy, and why.
const NOT_PROXIED: &[(&str, &str)] = &[
    (
        "new",
        "constructor; the scoped session makes sessions through its factory",
    ),
    ("builder", "constructor"),
    ("with_config", "constructor"),
    (
        "id",
        "identity of one session; the scope's session is reachable with call()",
    ),
    (
        "set_info",
        "SQLAlchemy's info has no setter on the proxy; update_info covers it",
    ),
    (
        "update_info",
        "takes a closure over the session's own dict; use call().update_info",
    ),
    (
        "get_bind_for",
        "typed variant of get_bind, not in SQLAlchemy's list",
    ),
    ("add_any", "type-erased add, not in SQLAlchemy's list"),
    (
        "make_transient",
        "a function on objects, not a session member in SQLAlchemy",
    ),
    (
        "transaction",
        "closure form of `async with session.begin()`; use call().transaction",
    ),
    (
        "transaction_with",
        "closure form of `session.begin()` with options; use call().transaction_with",
    ),
    (
        "nested_transaction",
        "closure form of `async with session.begin_nested()`; use call().nested_transaction",
    ),
    (
        "begin_with",
        "not in SQLAlchemy's proxy list (its begin() takes no options); use call().begin_with",
    ),
    (
        "scope",
        "closure form of `async with session`; the scoped session has its own scope()",
    ),
    (
        "events",
        "the scoped session's events() is its factory's registry (SQLAlchemy's listen on a \
         scoped_session); the current session's own is call().events()",
    ),
    ("get_transaction", "not in SQLAlchemy's proxy list"),
    ("get_nested_transaction", "not in SQLAlchemy's proxy list"),
    ("in_transaction", "not in SQLAlchemy's proxy list"),
    ("in_nested_transaction", "not in SQLAlchemy's proxy list"),
    ("len", "Rust container convention, not in SQLAlchemy's list"),
    (
        "is_empty",
        "Rust container convention, not in SQLAlchemy's list",
    ),
    (
        "set_bind",
        "generated as the setter of the `bind` attribute",
    ),
    (
        "set_autoflush",
        "generated as the setter of the `autoflush` attribute",
    ),
    (
        "set_identity_map",
        "generated as the setter of the `identity_map` attribute",
    ),
];

fn published_members() -> BTreeSet<String> {
    let path = workspace_root().join(SNAPSHOT_SOURCES[0]);
    let file = syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for item in file.items {
        if let syn::Item::Impl(block) = item {
            let published = block.attrs.iter().any(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "publish_signatures")
            });
            if !published {
                continue;
            }
            for item in block.items {
                if let syn::ImplItem::Fn(f) = item {
                    if matches!(f.vis, syn::Visibility::Public(_)) {
                        names.insert(f.sig.ident.to_string());
                    }
                }
            }
        }
    }
    names
}

fn proxied_names() -> BTreeSet<String> {
    let path = workspace_root().join(SNAPSHOT_SOURCES[1]);
    let source = std::fs::read_to_string(path).unwrap();
    let file = syn::parse_file(&source).unwrap();
    let mut names = BTreeSet::new();
    for item in file.items {
        if let syn::Item::Impl(block) = item {
            for attr in &block.attrs {
                if attr
                    .path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "proxy_methods")
                {
                    let tokens = attr.meta.require_list().unwrap().tokens.to_string();
                    // The async block only (the blocking one proxies `Session`: see
                    // proxy_blocking.rs).
                    if !tokens.starts_with("AsyncSession") {
                        continue;
                    }
                    for section in ["methods", "attributes", "classmethods"] {
                        let Some(start) = tokens.find(&format!("{section} (")) else {
                            continue;
                        };
                        let rest = &tokens[start + section.len() + 2..];
                        let list = &rest[..rest.find(')').unwrap()];
                        names.extend(
                            list.split(',')
                                .map(|n| n.trim().to_string())
                                .filter(|n| !n.is_empty()),
                        );
                    }
                }
            }
        }
    }
    names
}

#[test]
fn every_public_member_is_proxied_or_deliberately_left_out() {
    let members = published_members();
    let proxied = proxied_names();
    assert!(members.len() > 50, "parsed {} members", members.len());
    let ignored: BTreeSet<String> = NOT_PROXIED.iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<&String> = members
        .iter()
        .filter(|m| !proxied.contains(*m) && !ignored.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "public AsyncSession members neither proxied by async_scoped_session nor listed in \
         NOT_PROXIED (with a reason): {missing:?}"
    );
    let stale: Vec<&String> = ignored.iter().filter(|n| !members.contains(*n)).collect();
    assert!(
        stale.is_empty(),
        "NOT_PROXIED names members that no longer exist: {stale:?}"
    );
    let unknown: Vec<&String> = proxied.iter().filter(|n| !members.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "proxied names that AsyncSession does not publish: {unknown:?}"
    );
    // SQLAlchemy's list (seed 003), with `new` as `new_objects`.
    for name in [
        "contains",
        "iter",
        "aclose",
        "add",
        "add_all",
        "begin",
        "begin_nested",
        "close",
        "reset",
        "commit",
        "connection",
        "delete",
        "execute",
        "expire",
        "expire_all",
        "expunge",
        "expunge_all",
        "flush",
        "get_bind",
        "is_modified",
        "invalidate",
        "merge",
        "refresh",
        "rollback",
        "scalar",
        "scalars",
        "get",
        "get_one",
        "stream",
        "stream_scalars",
        "bind",
        "dirty",
        "deleted",
        "new_objects",
        "identity_map",
        "is_active",
        "autoflush",
        "no_autoflush",
        "info",
        "close_all",
        "object_session",
        "identity_key",
    ] {
        assert!(proxied.contains(name), "{name} is not proxied");
    }
}

// ---- a user's own wrapper, made by a factory ----

use session_core::{AsyncSession, Obj, SessionClass, SessionConfig, async_sessionmaker};
use session_macros::proxy_methods;
use session_tests::model::{A, metadata};
use session_tests::support::fresh_database;

/// A request-scoped session type of the user's: a subset of AsyncSession's members, written by
/// the macro, plus its own.
struct RequestSession {
    session: AsyncSession,
    request_id: u64,
}

#[proxy_methods(AsyncSession, methods(add, get_one, commit), attributes(autoflush))]
impl RequestSession {
    fn proxied(&self) -> &AsyncSession {
        &self.session
    }

    /// The user's own member beside the generated ones.
    fn request_id(&self) -> u64 {
        self.request_id
    }
}

impl SessionClass for RequestSession {
    const NAME: &'static str = "RequestSession";

    fn from_config(config: SessionConfig) -> Self {
        RequestSession {
            session: AsyncSession::with_config(config),
            request_id: 7,
        }
    }

    fn as_async_session(&self) -> &AsyncSession {
        &self.session
    }
}

#[tokio::test]
async fn a_user_wrapper_made_by_async_sessionmaker() {
    let engine = session_core::create_async_engine(&fresh_database("userwrap").await).unwrap();
    let md = metadata();
    engine
        .transaction(async |conn| md.create_all(conn).await)
        .await
        .unwrap();
    let maker = async_sessionmaker(engine).class::<RequestSession>();
    let session = maker.session();
    assert_eq!(session.request_id(), 7);
    assert!(session.autoflush());
    session.set_autoflush(false);
    assert!(
        !session.session.autoflush(),
        "the setter reached the session"
    );
    session
        .add(&Obj::new(A {
            data: "through a user wrapper".into(),
            ..A::default()
        }))
        .unwrap();
    session.commit().await.unwrap();
    let a = session.get_one::<A>(1).await.unwrap();
    assert_eq!(a.read().unwrap().data, "through a user wrapper");
}
