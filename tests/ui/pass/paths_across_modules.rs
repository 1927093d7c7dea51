//! Targets defined in this crate at the root and in nested modules, reached through every
//! kind of path; one wrapper in a function body.
#![deny(warnings)]

/// At the crate root.
pub struct Root(i64);

#[session_macros::publish_signatures]
impl Root {
    /// The value.
    pub fn value(&self) -> i64 { self.0 }
}

pub mod a {
    /// In a module.
    pub struct Inner(pub i64);

    #[session_macros::publish_signatures]
    impl Inner {
        /// Doubles the value.
        pub fn double(&mut self) -> i64 { self.0 *= 2; self.0 }
    }

    pub mod b {
        /// Two levels down.
        pub struct Deep(pub i64);

        #[session_macros::publish_signatures]
        impl Deep {
            /// The value plus one.
            pub fn next(&self) -> i64 { self.0 + 1 }
        }

        /// Reaches `Root` through `crate::` and `Inner` through `super::`.
        pub struct Both(pub crate::Root, pub super::Inner);

        #[session_macros::proxy_methods(crate::Root, methods(value))]
        impl Both {
            fn proxied(&self) -> &crate::Root { &self.0 }
        }

        /// Reaches `Inner` through `super::`.
        pub struct ViaSuper(pub super::Inner);

        #[session_macros::proxy_methods(super::Inner, methods(double))]
        impl ViaSuper {
            fn proxied_mut(&mut self) -> &mut super::Inner { &mut self.0 }
        }
    }
}

mod wrappers {
    use crate::a::b::Deep;

    /// Reaches `Deep` through an import.
    pub struct Imported(pub Deep);

    #[session_macros::proxy_methods(Deep, methods(next))]
    impl Imported {
        fn proxied(&self) -> &Deep { &self.0 }
    }

    /// Reaches `Deep` through a full path.
    pub struct Full(pub crate::a::b::Deep);

    #[session_macros::proxy_methods(crate::a::b::Deep, methods(next))]
    impl Full {
        fn proxied(&self) -> &crate::a::b::Deep { &self.0 }
    }
}

fn main() {
    let both = a::b::Both(Root(3), a::Inner(1));
    assert_eq!(both.value(), 3);
    assert_eq!(both.1.0, 1);
    let mut via = a::b::ViaSuper(a::Inner(2));
    assert_eq!(via.double(), 4);
    assert_eq!(wrappers::Imported(a::b::Deep(5)).next(), 6);
    assert_eq!(wrappers::Full(a::b::Deep(6)).next(), 7);

    struct Local(Root);

    #[session_macros::proxy_methods(Root, methods(value))]
    impl Local {
        fn proxied(&self) -> &Root { &self.0 }
    }

    assert_eq!(Local(Root(9)).value(), 9);
}
