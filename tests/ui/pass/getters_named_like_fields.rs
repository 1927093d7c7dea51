//! An entity whose own getters share its fields' names (columns and relationships alike):
//! the derive adds only `C` to the type under a public name, so nothing collides, and
//! statements name the columns through `User::C`.
#![deny(warnings)]

use session_core::{Collection, Entity, Reference, select, selectinload};

/// A user with getters named like its fields.
#[derive(Debug, Clone, Default, Entity)]
pub struct User {
    /// Key.
    #[entity(primary_key, generated)]
    pub id: i32,
    /// Login name.
    name: String,
    /// Nullable.
    nickname: Option<String>,
    /// The user's posts.
    #[entity(relationship(foreign_key = "user_id"))]
    posts: Collection<Post>,
}

impl User {
    /// The key (a getter named like the `id` column).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The name (a getter named like the `name` column).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nickname, by value.
    pub fn nickname(&self) -> Option<&str> {
        self.nickname.as_deref()
    }

    /// The posts (a getter named like the relationship).
    pub fn posts(&self) -> session_core::Result<&[session_core::Obj<Post>]> {
        self.posts.get()
    }
}

/// A post.
#[derive(Debug, Clone, Default, Entity)]
pub struct Post {
    /// Key.
    #[entity(primary_key, generated)]
    pub id: i32,
    /// Author.
    #[entity(foreign_key = "user.id")]
    pub user_id: i32,
    /// The author.
    #[entity(relationship(foreign_key = "user_id"))]
    user: Reference<User>,
}

impl Post {
    /// The author (a getter named like the relationship).
    pub fn user(&self) -> session_core::Result<Option<&session_core::Obj<User>>> {
        self.user.get()
    }

    /// A method named like the column of another struct.
    pub fn name() -> &'static str {
        "post"
    }
}

fn main() {
    let user = User {
        id: 1,
        name: "ann".into(),
        ..User::default()
    };
    assert_eq!((user.id(), user.name(), user.nickname()), (1, "ann", None));
    assert!(user.posts().unwrap().is_empty());
    assert!(Post::default().user().unwrap().is_none());
    assert_eq!(Post::name(), "post");

    let (sql, _) = select::<User>()
        .filter(User::C.name.eq("ann").and(User::C.nickname.eq(None)))
        .options(selectinload(User::C.posts))
        .order_by(User::C.id.asc())
        .to_sql();
    assert!(sql.contains("WHERE (("), "{sql}");
    let _ = select::<Post>().join(Post::C.user).filter(Post::C.user_id.eq(1));
    assert_eq!(User::C.name.name(), "name");
    assert_eq!(User::TABLE.columns.len(), 3);
}
