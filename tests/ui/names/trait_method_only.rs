use proxy_target::{Id, Record, Repo};
use session_macros::proxy_methods;

#[derive(Clone, Debug)]
struct Row(u32);

impl Record for Row {
    fn id(&self) -> Id { Id(self.0) }
}

struct W(Repo<Row>);

// `fmt` exists only in the target's published `impl Display for Repo<T>`.
#[proxy_methods(Repo<Row>, methods(len, fmt))]
impl W {
    fn proxied(&self) -> &Repo<Row> { &self.0 }
}

fn main() {}
