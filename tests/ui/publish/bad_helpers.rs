pub struct Settings {
    limit: usize,
}

#[session_macros::publish_signatures]
impl Settings {
    /// Misspelled helper.
    #[proxy(atribute)]
    pub fn limit(&self) -> usize { self.limit }
    /// Not a getter: takes an argument.
    #[proxy(attribute)]
    pub fn limit_plus(&self, n: usize) -> usize { self.limit + n }
    /// Not pub.
    #[proxy(attribute)]
    fn hidden(&self) -> usize { self.limit }
}

pub struct Generic<T>(T);

#[session_macros::publish_signatures]
impl<T> Generic<Vec<T>> {
    /// A generic target's self type must list the impl's parameters.
    pub fn get(&self) -> &Vec<T> { &self.0 }
}

fn main() {}
