"""Does a remote payment need strong customer authentication, and under which article?

The regime is the paying account's: the country of its IBAN is the country of the payment
service provider that holds it. An account held in the EEA follows the RTS of the PSD2
(Commission Delegated Regulation (EU) 2018/389, amounts in EUR); one held in the United Kingdom
the FCA's onshored SCA-RTS (amounts in GBP); one held elsewhere (the Swiss entity) is outside
both, and the check says so instead of applying either. Amounts are compared in the regime's
currency, converted from the paying account's at the rates of :data:`rules.EUR_PER_UNIT`; a
currency without a rate is refused, never converted at 1.0.

Exemptions, each with its article (:mod:`costline.assistant.rules` holds the figures):

* art. 13, trusted beneficiaries: only a payee on the list the payer created (with SCA). A
  payee the payer has paid before is not on it for that reason; the demo bank has no such
  lists, so this exemption never applies there. The house rule on top: a payee never paid
  before always needs SCA.
* art. 16, low value: the payment at most EUR 30 (GBP 25), *and*, counting this payment, the
  payments exempted since the payer's last SCA at most EUR 100 (GBP 85) in total and at most
  five in number. The RTS lets a provider apply either the amount or the count; both are
  applied here, whichever stops first. The counters are the payer's (:class:`ScaCounters`),
  and an SCA resets them.
* art. 18, transaction risk analysis: only with a real-time risk analysis of *this* payment.
  The assistant has none for a payment not yet made (its fraud model scores booked
  transactions), so it grants no art. 18 exemption and says why.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

from costline.assistant import rules


class Exemption(StrEnum):
    """The RTS's exemptions this module applies."""

    TRUSTED_BENEFICIARY = "art_13"
    LOW_VALUE = "art_16"


class Regime(StrEnum):
    """Which SCA rules a payment falls under."""

    EU = "eu_psd2"
    UK = "uk_sca_rts"
    NONE = "none"


@dataclass(frozen=True)
class RegimeRules:
    """One regime's figures, in its currency, and where they come from."""

    regime: Regime
    currency: str
    low_value_limit: float
    low_value_cumulative_limit: float
    low_value_max_count: int
    source: str
    #: Art. 18's bands for remote credit transfers: (reference fraud rate, threshold value).
    tra_bands: tuple[tuple[float, float], ...]


REGIMES = {
    Regime.EU: RegimeRules(
        Regime.EU,
        "EUR",
        rules.SCA_LOW_VALUE_EUR,
        rules.SCA_LOW_VALUE_CUMULATIVE_EUR,
        rules.SCA_LOW_VALUE_MAX_CONSECUTIVE,
        rules.SCA_SOURCE_EU,
        rules.TRA_CREDIT_TRANSFER_BANDS,
    ),
    Regime.UK: RegimeRules(
        Regime.UK,
        "GBP",
        rules.SCA_LOW_VALUE_GBP,
        rules.SCA_LOW_VALUE_CUMULATIVE_GBP,
        rules.SCA_LOW_VALUE_MAX_CONSECUTIVE,
        rules.SCA_SOURCE_UK,
        rules.TRA_CREDIT_TRANSFER_BANDS_GBP,
    ),
}


def regime_of(iban_country: str) -> Regime:
    """The regime of an account held in ``iban_country`` (ISO 3166 alpha-2)."""
    country = iban_country.upper()
    if country == "GB":
        return Regime.UK
    if country in rules.EEA_COUNTRIES:
        return Regime.EU
    return Regime.NONE


@dataclass(frozen=True)
class Since:
    """A payer's remote payments exempted under art. 16 since their last SCA."""

    count: int = 0
    amount: float = 0.0


class ScaCounters:
    """Per-payer art. 16 counters (this process's; safe across its threads)."""

    def __init__(self) -> None:
        """No payer has an exempted payment yet."""
        self._lock = threading.Lock()
        self._since: dict[tuple[str, str], Since] = {}

    def since_last_sca(self, tenant: str, payer: str) -> Since:
        """What ``payer`` paid exempt since their last SCA."""
        with self._lock:
            return self._since.get((tenant, payer), Since())

    def exempted(self, tenant: str, payer: str, amount: float) -> Since:
        """Count one more exempted payment of ``amount`` (in the regime's currency)."""
        with self._lock:
            now = self._since.get((tenant, payer), Since())
            now = Since(now.count + 1, now.amount + amount)
            self._since[(tenant, payer)] = now
            return now

    def authenticated(self, tenant: str, payer: str) -> None:
        """The payer passed SCA: the counters start again."""
        with self._lock:
            self._since.pop((tenant, payer), None)


@dataclass(frozen=True)
class ScaDecision:
    """Whether SCA is required, why (with the article), and under which rules."""

    required: bool
    reason: str
    regime: Regime
    source: str
    #: The payment in the regime's currency (None outside the regimes or without a rate).
    amount: float | None
    #: Refused outright (an unknown currency): the payment cannot be assessed.
    refused: bool = False
    #: The exemption applied, when SCA is not required within a regime.
    exemption: Exemption | None = None


def decide(
    *,
    amount: float,
    currency: str,
    iban_country: str,
    new_payee: bool,
    trusted_beneficiary: bool,
    low_value_opt_in: bool,
    since: Since,
    fraud_rate: float | None = None,
) -> ScaDecision:
    """Whether a remote payment of ``amount`` ``currency`` from an account held in
    ``iban_country`` needs SCA (``since``: the payer's exempted payments since their last SCA;
    ``fraud_rate``: the bank's art. 19 rate for remote credit transfers, reported with a
    decision that could have used art. 18)."""
    regime = regime_of(iban_country)
    if regime is Regime.NONE:
        return ScaDecision(
            False,
            f"the paying account is held in {iban_country.upper()}, outside the EEA and the UK: "
            "neither the PSD2 RTS nor the UK SCA-RTS applies (the bank's own authentication "
            "policy does)",
            regime,
            "PSD2 art. 2 (territorial scope)",
            None,
        )
    r = REGIMES[regime]
    value = rules.convert(amount, currency, r.currency)
    if value is None:
        return ScaDecision(
            True,
            f"no conversion rate for {currency!r}: the payment cannot be compared with the "
            f"{r.currency} thresholds and is refused",
            regime,
            r.source,
            None,
            refused=True,
        )
    money = f"{r.currency} {value:,.2f}"
    if trusted_beneficiary:
        return ScaDecision(
            False,
            "payee on the payer's list of trusted beneficiaries (art. 13)",
            regime,
            r.source,
            value,
            exemption=Exemption.TRUSTED_BENEFICIARY,
        )
    if new_payee and rules.SCA_NEW_PAYEE_ALWAYS:
        return ScaDecision(
            True,
            "a payee the payer has never paid: SCA by the bank's rule (art. 13 exempts only "
            "payees on the payer's own list of trusted beneficiaries)",
            regime,
            r.source,
            value,
        )
    if low_value_opt_in and value <= r.low_value_limit:
        count, total = since.count + 1, since.amount + value
        if count <= r.low_value_max_count and total <= r.low_value_cumulative_limit + 1e-9:
            return ScaDecision(
                False,
                f"low-value exemption (art. 16): {money} <= {r.low_value_limit:g}; with it, "
                f"{count} payment(s) and {r.currency} {total:,.2f} since the last SCA "
                f"(limits {r.low_value_max_count} and {r.low_value_cumulative_limit:g})",
                regime,
                r.source,
                value,
                exemption=Exemption.LOW_VALUE,
            )
        over = (
            f"{count} payments since the last SCA (more than {r.low_value_max_count})"
            if count > r.low_value_max_count
            else f"{r.currency} {total:,.2f} since the last SCA (more than "
            f"{r.low_value_cumulative_limit:g})"
        )
        return ScaDecision(
            True,
            f"{money} is low-value, but with it {over} (art. 16(b), (c))",
            regime,
            r.source,
            value,
        )
    return ScaDecision(
        True,
        f"{money}"
        + (
            f" is above the low-value limit of {r.low_value_limit:g} (art. 16)"
            if value > r.low_value_limit
            else " (the payer has not opted in to the low-value exemption)"
        )
        + "; no transaction-risk-analysis exemption without a real-time risk analysis of this "
        "payment (art. 18(2)(c))" + ("" if fraud_rate is None else _rate_note(fraud_rate, r)),
        regime,
        r.source,
        value,
    )


def _rate_note(fraud_rate: float, r: RegimeRules) -> str:
    """What the bank's art. 19 rate would allow under art. 18, were the payment analysed."""
    limit = max((etv for rate, etv in r.tra_bands if fraud_rate <= rate), default=None)
    allows = (
        f"within the reference rate for payments up to {r.currency} {limit:g}"
        if limit is not None
        else "above every reference rate of the annex"
    )
    return (
        f"; the bank's fraud rate for remote credit transfers is {fraud_rate:.4%} by value over "
        f"90 days (art. 19), {allows}"
    )
