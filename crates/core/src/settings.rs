//! Validation of a connection's common settings ([`ConnectionSettings::validate`]), run when
//! the settings are saved so that a bad value is refused with a message naming the setting
//! instead of failing every later transform, plan or guard.
//!
//! The rules: `mass_delete_share` in [0, 1]; `price.margin_percent` above −100 (a factor of
//! zero or less has no inverse); `conversion_rate` above zero when set; rounding steps above
//! zero; a charm ending in (0, 1) (0 would be plain rounding up, 1 or more is not an ending);
//! `low_stock_threshold` zero or more; `fetch_interval_secs` at least [`MIN_FETCH_INTERVAL_SECS`]
//! when set (platform rate limits; a shorter schedule only queues scans behind each other).

use rust_decimal::Decimal;
use thiserror::Error;

use crate::model::{ConnectionSettings, Rounding};

/// The shortest scheduled fetch interval, in seconds.
pub const MIN_FETCH_INTERVAL_SECS: u64 = 60;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SettingsError {
    #[error("mass_delete_share must be between 0 and 1, not {share}")]
    MassDeleteShare { share: Decimal },
    #[error("price.margin_percent must be above -100, not {percent}")]
    MarginPercent { percent: Decimal },
    #[error("conversion_rate must be above zero, not {rate}")]
    ConversionRate { rate: Decimal },
    #[error("price.rounding step must be above zero, not {step}")]
    RoundingStep { step: Decimal },
    #[error("price.rounding charm ending must be above 0 and below 1, not {ending}")]
    CharmEnding { ending: Decimal },
    #[error("low_stock_threshold must be zero or more, not {threshold}")]
    LowStockThreshold { threshold: i64 },
    #[error("fetch_interval_secs must be at least {MIN_FETCH_INTERVAL_SECS}, not {secs}")]
    FetchInterval { secs: u64 },
}

impl ConnectionSettings {
    /// Checks the rules of the module docs; the first broken one is the error.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let share = self.mass_delete_share;
        if share < Decimal::ZERO || share > Decimal::ONE {
            return Err(SettingsError::MassDeleteShare { share });
        }
        let percent = self.price.margin_percent;
        if percent <= -Decimal::ONE_HUNDRED {
            return Err(SettingsError::MarginPercent { percent });
        }
        if let Some(rate) = self.conversion_rate
            && rate <= Decimal::ZERO
        {
            return Err(SettingsError::ConversionRate { rate });
        }
        match self.price.rounding {
            Rounding::Nearest { step } | Rounding::Up { step } | Rounding::Down { step }
                if step <= Decimal::ZERO =>
            {
                return Err(SettingsError::RoundingStep { step });
            }
            Rounding::Charm { ending } if ending <= Decimal::ZERO || ending >= Decimal::ONE => {
                return Err(SettingsError::CharmEnding { ending });
            }
            _ => {}
        }
        if self.low_stock_threshold < 0 {
            return Err(SettingsError::LowStockThreshold {
                threshold: self.low_stock_threshold,
            });
        }
        if let Some(secs) = self.fetch_interval_secs
            && secs < MIN_FETCH_INTERVAL_SECS
        {
            return Err(SettingsError::FetchInterval { secs });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(mantissa: i64, scale: u32) -> Decimal {
        Decimal::new(mantissa, scale)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ConnectionSettings::default().validate(), Ok(()));
    }

    #[test]
    fn each_rule_refuses_its_bad_values_and_accepts_the_edges() {
        type Edit = fn(&mut ConnectionSettings);
        let bad: [(Edit, &str); 12] = [
            (|s| s.mass_delete_share = dec(-1, 2), "mass_delete_share"),
            (|s| s.mass_delete_share = dec(101, 2), "mass_delete_share"),
            (|s| s.mass_delete_share = Decimal::MAX, "mass_delete_share"),
            (|s| s.price.margin_percent = dec(-100, 0), "margin_percent"),
            (|s| s.price.margin_percent = Decimal::MIN, "margin_percent"),
            (
                |s| s.conversion_rate = Some(Decimal::ZERO),
                "conversion_rate",
            ),
            (
                |s| s.price.rounding = Rounding::Up { step: dec(-1, 0) },
                "step",
            ),
            (
                |s| {
                    s.price.rounding = Rounding::Nearest {
                        step: Decimal::ZERO,
                    }
                },
                "step",
            ),
            (
                |s| {
                    s.price.rounding = Rounding::Charm {
                        ending: Decimal::ZERO,
                    }
                },
                "charm",
            ),
            (
                |s| {
                    s.price.rounding = Rounding::Charm {
                        ending: Decimal::ONE,
                    }
                },
                "charm",
            ),
            (|s| s.low_stock_threshold = -1, "low_stock_threshold"),
            (|s| s.fetch_interval_secs = Some(59), "fetch_interval_secs"),
        ];
        for (index, (edit, word)) in bad.into_iter().enumerate() {
            let mut settings = ConnectionSettings::default();
            edit(&mut settings);
            let err = settings.validate().err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(word)),
                "case {index}: {err:?}"
            );
        }
        let good: [Edit; 7] = [
            |s| s.mass_delete_share = Decimal::ZERO,
            |s| s.mass_delete_share = Decimal::ONE,
            |s| s.price.margin_percent = dec(-9999, 2),
            |s| s.conversion_rate = Some(dec(1, 4)),
            |s| s.price.rounding = Rounding::Charm { ending: dec(1, 2) },
            |s| s.low_stock_threshold = 0,
            |s| s.fetch_interval_secs = Some(60),
        ];
        for (index, edit) in good.into_iter().enumerate() {
            let mut settings = ConnectionSettings::default();
            edit(&mut settings);
            assert_eq!(settings.validate(), Ok(()), "case {index}");
        }
    }
}
