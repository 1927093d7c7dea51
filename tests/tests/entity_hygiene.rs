//! `#[derive(Entity)]` beside items that shadow every name its expansion could use
//! unqualified (prelude types and traits, `core`, `std`), compiled with warnings denied.
#![deny(warnings)]

mod shadowed {
    #![allow(dead_code, non_camel_case_types, clippy::all)]

    struct Result;
    struct Ok;
    struct Err;
    struct Option;
    struct Some;
    struct None;
    struct Box;
    struct Vec;
    struct String;
    struct Clone;
    struct PartialEq;
    struct Iterator;
    struct ToSql;
    struct Row;
    struct Error;
    struct Column;
    struct Table;
    struct Entity;
    struct Collection;
    mod core {}
    mod std {}
    fn param() {}
    fn get() {}
    fn array() {}

    #[derive(Debug, ::core::clone::Clone, ::core::default::Default, ::session_core::Entity)]
    #[entity(table = "hygienic_parent")]
    pub(crate) struct Parent {
        #[entity(primary_key, generated)]
        pub(crate) id: i32,
        #[entity(column = "label", unique)]
        pub(crate) name: ::std::string::String,
        pub(crate) note: ::core::option::Option<i64>,
        #[entity(relationship(foreign_key = "parent_id"))]
        pub(crate) children: ::session_core::Collection<Child>,
    }

    #[derive(Debug, ::core::clone::Clone, ::core::default::Default, ::session_core::Entity)]
    pub(crate) struct Child {
        #[entity(primary_key)]
        pub(crate) parent_id: i32,
        #[entity(primary_key)]
        pub(crate) position: i16,
        #[entity(relationship(foreign_key = "parent_id"))]
        pub(crate) parent: ::session_core::Reference<Parent>,
    }
}

use session_core::Entity;
use shadowed::{Child, Parent};

#[test]
fn the_expansion_names_nothing_unqualified() {
    assert_eq!(Parent::TABLE.name, "hygienic_parent");
    assert_eq!(Child::TABLE.name, "child");
    let child = Child {
        parent_id: 1,
        position: 2,
        ..Child::default()
    };
    assert_eq!(child.key(), (1, 2));
    let parent = Parent {
        id: 1,
        name: "p".into(),
        ..Parent::default()
    };
    assert_eq!(format!("{:?}", parent.column_param(1)), r#""p""#);
    assert!(parent.column_eq(&parent.clone(), 2));
}
