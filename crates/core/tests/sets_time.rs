//! Resolving order time sets into UTC ranges in the merchant's local time.

use tidemark_core::Timestamp;
use tidemark_core::sets::{ConnectionRef, OrderSet, SetContext, TimeRange};
use time::OffsetDateTime;
use time::macros::datetime;

fn ctx(now: OffsetDateTime, utc_offset_minutes: i32) -> SetContext {
    SetContext {
        utc_offset_minutes,
        ..SetContext::new(Timestamp::from_datetime(now))
    }
}

fn range(from: OffsetDateTime, to: OffsetDateTime) -> Option<TimeRange> {
    Some(TimeRange {
        from: Timestamp::from_datetime(from),
        to: Timestamp::from_datetime(to),
    })
}

#[track_caller]
fn check(ctx: &SetContext, cases: &[(OrderSet, Option<TimeRange>)]) {
    for (set, expected) in cases {
        assert_eq!(&set.time_range(ctx), expected, "{set} at {}", ctx.now);
    }
}

#[test]
fn utc_mid_month_saturday() {
    // Saturday 2025-03-15.
    let ctx = ctx(datetime!(2025-03-15 12:34:56 UTC), 0);
    check(
        &ctx,
        &[
            (
                OrderSet::Today,
                range(
                    datetime!(2025-03-15 0:00 UTC),
                    datetime!(2025-03-16 0:00 UTC),
                ),
            ),
            (
                OrderSet::Yesterday,
                range(
                    datetime!(2025-03-14 0:00 UTC),
                    datetime!(2025-03-15 0:00 UTC),
                ),
            ),
            (
                OrderSet::ThisMonth,
                range(
                    datetime!(2025-03-01 0:00 UTC),
                    datetime!(2025-04-01 0:00 UTC),
                ),
            ),
            (
                OrderSet::ThisYear,
                range(
                    datetime!(2025-01-01 0:00 UTC),
                    datetime!(2026-01-01 0:00 UTC),
                ),
            ),
            (
                OrderSet::LastWeek,
                range(
                    datetime!(2025-03-03 0:00 UTC),
                    datetime!(2025-03-10 0:00 UTC),
                ),
            ),
        ],
    );
}

#[test]
fn negative_offset_across_a_year_boundary() {
    // 02:00 UTC on New Year's Day is still 21:00 on 31 December (a Tuesday) at UTC-5.
    let ctx = ctx(datetime!(2025-01-01 02:00 UTC), -300);
    check(
        &ctx,
        &[
            (
                OrderSet::Today,
                range(datetime!(2024-12-31 0:00 -5), datetime!(2025-01-01 0:00 -5)),
            ),
            (
                OrderSet::Yesterday,
                range(datetime!(2024-12-30 0:00 -5), datetime!(2024-12-31 0:00 -5)),
            ),
            (
                OrderSet::ThisMonth,
                range(datetime!(2024-12-01 0:00 -5), datetime!(2025-01-01 0:00 -5)),
            ),
            (
                OrderSet::ThisYear,
                range(datetime!(2024-01-01 0:00 -5), datetime!(2025-01-01 0:00 -5)),
            ),
            (
                OrderSet::LastWeek,
                range(datetime!(2024-12-23 0:00 -5), datetime!(2024-12-30 0:00 -5)),
            ),
        ],
    );
    // The resolved bounds are 05:00 UTC.
    assert_eq!(
        OrderSet::Today.time_range(&ctx).map(|r| r.from),
        Some(Timestamp::from_datetime(datetime!(2024-12-31 05:00 UTC)))
    );
}

#[test]
fn positive_offset_across_a_month_boundary() {
    // 20:00 UTC on 28 February is 01:30 on 1 March at UTC+5:30.
    let ctx = ctx(datetime!(2025-02-28 20:00 UTC), 330);
    check(
        &ctx,
        &[
            (
                OrderSet::Today,
                range(
                    datetime!(2025-03-01 0:00 +5:30),
                    datetime!(2025-03-02 0:00 +5:30),
                ),
            ),
            (
                OrderSet::Yesterday,
                range(
                    datetime!(2025-02-28 0:00 +5:30),
                    datetime!(2025-03-01 0:00 +5:30),
                ),
            ),
            (
                OrderSet::ThisMonth,
                range(
                    datetime!(2025-03-01 0:00 +5:30),
                    datetime!(2025-04-01 0:00 +5:30),
                ),
            ),
        ],
    );
}

#[test]
fn last_week_on_the_sunday_and_the_monday() {
    let sunday = ctx(datetime!(2025-03-16 23:59:59.999 UTC), 0);
    check(
        &sunday,
        &[(
            OrderSet::LastWeek,
            range(
                datetime!(2025-03-03 0:00 UTC),
                datetime!(2025-03-10 0:00 UTC),
            ),
        )],
    );
    let monday = ctx(datetime!(2025-03-17 0:00 UTC), 0);
    check(
        &monday,
        &[(
            OrderSet::LastWeek,
            range(
                datetime!(2025-03-10 0:00 UTC),
                datetime!(2025-03-17 0:00 UTC),
            ),
        )],
    );
    // Across a year boundary: Thursday 2026-01-01.
    let new_year = ctx(datetime!(2026-01-01 10:00 UTC), 0);
    check(
        &new_year,
        &[(
            OrderSet::LastWeek,
            range(
                datetime!(2025-12-22 0:00 UTC),
                datetime!(2025-12-29 0:00 UTC),
            ),
        )],
    );
}

#[test]
fn absolute_months_and_years() {
    let ctx = ctx(datetime!(2025-03-15 12:00 UTC), -300);
    check(
        &ctx,
        &[
            (
                OrderSet::OfMonth {
                    year: 2024,
                    month: 2,
                },
                range(datetime!(2024-02-01 0:00 -5), datetime!(2024-03-01 0:00 -5)),
            ),
            (
                OrderSet::OfMonth {
                    year: 2025,
                    month: 12,
                },
                range(datetime!(2025-12-01 0:00 -5), datetime!(2026-01-01 0:00 -5)),
            ),
            (
                OrderSet::OfYear { year: 2023 },
                range(datetime!(2023-01-01 0:00 -5), datetime!(2024-01-01 0:00 -5)),
            ),
        ],
    );
    // The last year the calendar holds still has an end.
    let last = OrderSet::OfYear { year: 9999 }.time_range(&ctx);
    assert_eq!(
        last.map(|r| r.to.millis() - r.from.millis()),
        Some(365 * 86_400_000)
    );
}

#[test]
fn sets_that_are_not_about_time_have_no_range() {
    let ctx = ctx(datetime!(2025-03-15 12:00 UTC), 0);
    let woo = ConnectionRef("woo".into());
    check(
        &ctx,
        &[
            (
                OrderSet::OnConnection {
                    connection: woo.clone(),
                },
                None,
            ),
            (
                OrderSet::PendingUpdates {
                    connection: woo.clone(),
                },
                None,
            ),
            (OrderSet::PendingCreates { connection: woo }, None),
            // Values the calendar cannot hold.
            (
                OrderSet::OfMonth {
                    year: 2025,
                    month: 13,
                },
                None,
            ),
            (
                OrderSet::OfMonth {
                    year: 2025,
                    month: 0,
                },
                None,
            ),
        ],
    );
    let absurd_offset = SetContext {
        utc_offset_minutes: 100_000,
        ..ctx
    };
    assert_eq!(OrderSet::Today.time_range(&absurd_offset), None);
}
