#[derive(Debug, Clone, PartialEq)]
struct Money(i64);

#[derive(Debug, Clone, session_core::Entity)]
struct Invoice {
    #[entity(primary_key)]
    id: i32,
    total: Money,
}

fn main() {}
