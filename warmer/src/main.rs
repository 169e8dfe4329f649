//! The `warmer` Lambda function (being written: see issue 5).

fn main() {}
