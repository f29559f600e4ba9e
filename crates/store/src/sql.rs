//! A dialect-independent SQL fragment: text pieces and bound values, turned into a
//! `sqlx::QueryBuilder` of either dialect by [`query_builder!`]. Values are always bound
//! (`push_bind`), never spliced into the text.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    I64(Option<i64>),
    Text(Option<String>),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Sql(Cow<'static, str>),
    Arg(Arg),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sql {
    pub(crate) parts: Vec<Part>,
}

impl Sql {
    pub(crate) fn new(text: &'static str) -> Self {
        Self {
            parts: vec![Part::Sql(Cow::Borrowed(text))],
        }
    }

    /// Appends SQL text. Only ever called with text written in this crate.
    pub(crate) fn push(&mut self, text: &'static str) -> &mut Self {
        self.parts.push(Part::Sql(Cow::Borrowed(text)));
        self
    }

    pub(crate) fn bind(&mut self, value: Arg) -> &mut Self {
        self.parts.push(Part::Arg(value));
        self
    }

    pub(crate) fn bind_i64(&mut self, value: i64) -> &mut Self {
        self.bind(Arg::I64(Some(value)))
    }

    pub(crate) fn bind_text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Arg::Text(Some(value.into())))
    }

    /// `(v1, v2, …)` with every value bound.
    pub(crate) fn bind_list<I>(&mut self, values: I) -> &mut Self
    where
        I: IntoIterator<Item = Arg>,
    {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    pub(crate) fn append(&mut self, other: Sql) -> &mut Self {
        self.parts.extend(other.parts);
        self
    }
}

/// Builds a `QueryBuilder<DB>` from a [`Sql`]; used inside [`crate::with_db!`] where `DB`
/// names the dialect.
macro_rules! query_builder {
    ($sql:expr) => {{
        let mut qb = ::sqlx::QueryBuilder::<DB>::new("");
        for part in $sql.parts {
            match part {
                $crate::sql::Part::Sql(text) => {
                    qb.push(text);
                }
                $crate::sql::Part::Arg($crate::sql::Arg::I64(v)) => {
                    qb.push_bind(v);
                }
                $crate::sql::Part::Arg($crate::sql::Arg::Text(v)) => {
                    qb.push_bind(v);
                }
                $crate::sql::Part::Arg($crate::sql::Arg::Bool(v)) => {
                    qb.push_bind(v);
                }
            }
        }
        qb
    }};
}
pub(crate) use query_builder;
