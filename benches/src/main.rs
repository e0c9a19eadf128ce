//! Budget check: reads criterion's results and fails when a median breaks the users' budgets.
fn main() {}
