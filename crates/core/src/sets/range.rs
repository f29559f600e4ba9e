//! Resolving the time sets of orders ("of 2025 march", "yesterday") into UTC ranges.
//!
//! Days are the merchant's local days: `SetContext::utc_offset_minutes` is a fixed offset, so
//! every local day is exactly 24 hours long and a range of whole days is
//! `[midnight of the first day, midnight of the last day + 24 h)`, computed in milliseconds so
//! that even the last representable day has an end.

use time::{Date, Duration, Month, UtcOffset};

use super::{OrderSet, SetContext, TimeRange};
use crate::model::Timestamp;

const DAY_MILLIS: i64 = 86_400_000;

impl OrderSet {
    /// The half-open UTC range `[from, to)` of a time set in the merchant's local time; `None`
    /// for the sets that are not about time, and for values the calendar cannot hold (month
    /// 13, an offset beyond ±25:59).
    pub fn time_range(&self, ctx: &SetContext) -> Option<TimeRange> {
        let offset = UtcOffset::from_whole_seconds(ctx.utc_offset_minutes.checked_mul(60)?).ok()?;
        let today =
            || -> Option<Date> { Some(ctx.now.to_datetime()?.checked_to_offset(offset)?.date()) };
        let (first, last) = match *self {
            Self::OnConnection { .. }
            | Self::PendingUpdates { .. }
            | Self::PendingCreates { .. } => {
                return None;
            }
            Self::OfMonth { year, month } => month_days(year, Month::try_from(month).ok()?)?,
            Self::OfYear { year } => year_days(year)?,
            Self::ThisMonth => {
                let today = today()?;
                month_days(today.year(), today.month())?
            }
            Self::ThisYear => year_days(today()?.year())?,
            Self::LastWeek => {
                // Previous ISO week: Monday to Sunday before this week's Monday.
                let today = today()?;
                let since_monday = i64::from(today.weekday().number_days_from_monday());
                let monday = today.checked_sub(Duration::days(since_monday))?;
                (
                    monday.checked_sub(Duration::days(7))?,
                    monday.previous_day()?,
                )
            }
            Self::Yesterday => {
                let yesterday = today()?.previous_day()?;
                (yesterday, yesterday)
            }
            Self::Today => {
                let today = today()?;
                (today, today)
            }
        };
        let from = local_midnight(first, offset);
        let to = Timestamp::from_millis(
            local_midnight(last, offset)
                .millis()
                .checked_add(DAY_MILLIS)?,
        );
        Some(TimeRange { from, to })
    }
}

fn month_days(year: i32, month: Month) -> Option<(Date, Date)> {
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    Some((first, last))
}

fn year_days(year: i32) -> Option<(Date, Date)> {
    let first = Date::from_calendar_date(year, Month::January, 1).ok()?;
    let last = Date::from_calendar_date(year, Month::December, 31).ok()?;
    Some((first, last))
}

fn local_midnight(date: Date, offset: UtcOffset) -> Timestamp {
    Timestamp::from_datetime(date.midnight().assume_offset(offset))
}
