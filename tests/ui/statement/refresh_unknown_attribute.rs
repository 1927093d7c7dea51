use session_core::{AsyncSession, Entity, Obj};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    data: String,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
}

// A misspelled attribute, and another entity's column, do not compile.
async fn refresh(session: &AsyncSession, obj: &Obj<A>) -> session_core::Result<()> {
    session.refresh(obj, &[&A::C.dta]).await?;
    session.expire(obj, &[&B::C.id])?;
    Ok(())
}

fn main() {}
