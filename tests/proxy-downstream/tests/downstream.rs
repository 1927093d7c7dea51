//! A wrapper in this crate proxies `proxy_target::Repo<T>`, a generic target of another crate
//! whose signatures name its private imports and aliases: each proxied member is called and
//! checked against the target's own behaviour.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use proxy_downstream::{Name, Names, Store};
use proxy_target::{Id, Repo, RepoError};

fn name(id: u32, text: &str) -> Name {
    Name::from((id, text))
}

fn store() -> Store<Name> {
    let mut store = Store::wrap(Store::<Name>::new("people"));
    assert_eq!(store.put(name(2, "bo")), None);
    assert_eq!(store.put(name(1, "al")), None);
    store
}

#[test]
fn a_generic_target_of_another_crate_is_proxied_with_its_own_types() {
    let mut store = store();
    let before = store.reached.get();
    // `Result<T>` is the target crate's one-parameter alias; `Id` its private import.
    let got: Result<Name, RepoError> = store.get(Id(1));
    assert_eq!(got, Ok(name(1, "al")));
    assert_eq!(store.get(Id(9)), Err(RepoError::Missing(Id(9))));
    // `Rows<'_, T>` is a private alias of the target's module: `Vec<&T>` here.
    let all: Vec<&Name> = store.all();
    assert_eq!(all, [&name(1, "al"), &name(2, "bo")]);
    let odd: Vec<&Name> = store.filter(|id| id.0 % 2 == 1);
    assert_eq!(odd, [&name(1, "al")]);
    // `R: Into<T>` and `impl IntoIterator<Item = R>`.
    assert_eq!(store.extend([(3, "cy"), (4, "di")]), 4);
    // `&Self` and `-> &mut Self` are the target's type, `Repo<Name>`.
    let mut other = Repo::new("more");
    other.put(name(5, "ed"));
    let merged: &mut Repo<Name> = store.merge(&other);
    assert_eq!(merged.len(), 5);
    assert_eq!(store.len(), 5);
    assert!(!store.is_empty());
    assert!(store.named());
    // From the target's second published block (`part = stats`).
    let size: usize = store.size();
    assert_eq!(size, 5);
    assert_eq!(store.first_id(), Some(Id(1)));
    // An attribute and its setter.
    assert_eq!(store.name(), "people");
    store.set_name("folk".into());
    assert_eq!(store.name(), "folk");
    assert!(
        store.reached.get() >= before + 12,
        "every member went through the wrapper's accessors"
    );
}

#[test]
fn a_deprecated_member_is_still_proxied() {
    #[allow(deprecated)]
    let count = store().count();
    assert_eq!(count, 2);
}

#[test]
fn the_same_target_through_an_import_with_a_concrete_argument() {
    let mut repo = Repo::new("names");
    repo.put(name(7, "gu"));
    let names = Names(repo);
    assert_eq!(names.len(), 1);
    assert_eq!(names.get(Id(7)), Ok(name(7, "gu")));
}

#[test]
fn track_caller_travels_with_the_member() {
    let location = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&location);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        *seen.lock().unwrap() = info.location().map(|l| (l.file().to_string(), l.line()));
    }));
    let store = store();
    let line = line!() + 1;
    let result = panic::catch_unwind(AssertUnwindSafe(|| store.expect(Id(42))));
    panic::set_hook(previous);
    assert!(result.is_err());
    let (file, at) = location.lock().unwrap().clone().expect("a location");
    // Without #[track_caller] on the proxied member the panic would point into the target
    // crate or at the wrapper's expansion, not at this call.
    assert!(file.ends_with("downstream.rs"), "{file}");
    assert_eq!(at, line);
    assert_eq!(store.expect(Id(1)), name(1, "al"));
}
