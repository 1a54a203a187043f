"""Every threshold and rule table of the assistant, in one place, with its source.

Compliance: PSD2 strong customer authentication (Commission Delegated Regulation (EU)
2018/389, the RTS on SCA and common and secure communication), GDPR (Regulation (EU)
2016/679), MiFID II suitability (Directive 2014/65/EU art. 25(2) and Commission Delegated
Regulation (EU) 2017/565 art. 54), customer due diligence (AMLD, Directive (EU) 2015/849
art. 13-14). Product risk classes are PRIIPs summary risk indicators (Commission Delegated
Regulation (EU) 2017/653, annex II: 1 lowest .. 7 highest).

Advice: the allocation rules are the house policy of the demo bank (emergency fund first, then
equity bounded by risk profile and horizon, a cash sleeve by liquidity need).
"""

from __future__ import annotations

from dataclasses import dataclass

# -- PSD2 SCA (RTS 2018/389; the UK's SCA-RTS) --------------------------------------------------

SCA_SOURCE_EU = "Commission Delegated Regulation (EU) 2018/389 (RTS on SCA), art. 13, 16, 18"
SCA_SOURCE_UK = "FCA SCA-RTS (Technical Standards on SCA and CSC Instrument 2020), art. 13, 16, 18"
#: Art. 16(a): a remote electronic payment of at most EUR 30 may be exempted from SCA...
SCA_LOW_VALUE_EUR = 30.0
#: ... art. 16(b)/(c): while the payments since the last SCA stay within EUR 100 or five.
SCA_LOW_VALUE_CUMULATIVE_EUR = 100.0
SCA_LOW_VALUE_MAX_CONSECUTIVE = 5
#: The UK SCA-RTS art. 16 (FCA Handbook, in force since 2021-01-01): GBP 25 and GBP 85.
SCA_LOW_VALUE_GBP = 25.0
SCA_LOW_VALUE_CUMULATIVE_GBP = 85.0
#: Art. 18 and its annex: the transaction-risk-analysis exemption, by the payment service
#: provider's fraud rate for remote electronic credit transfers: (reference fraud rate, exemption
#: threshold value in EUR), from the strictest band up. Needs a real-time risk analysis of the
#: payment (art. 18(2)(c)), which the assistant does not have for a payment not yet made.
TRA_CREDIT_TRANSFER_BANDS = ((0.00005, 500.0), (0.0001, 250.0), (0.00015, 100.0))
#: The UK SCA-RTS's exemption threshold values for the same reference rates, in GBP (FCA
#: Handbook SUP 15 Annex 12D, form NOT004).
TRA_CREDIT_TRANSFER_BANDS_GBP = ((0.00005, 440.0), (0.0001, 220.0), (0.00015, 85.0))
#: Art. 19: the fraud rate is computed per remote payment type, by value, over 90 days. The demo
#: bank's remote channels by type (card-present, contactless and direct debits are not remote
#: electronic payments initiated by the payer).
FRAUD_RATE_WINDOW_DAYS = 90
REMOTE_CARD = "remote_card"
REMOTE_CREDIT_TRANSFER = "remote_credit_transfer"
SCA_REMOTE_CHANNELS = {
    REMOTE_CARD: ("ecommerce",),
    REMOTE_CREDIT_TRANSFER: ("online_banking", "mobile"),
}
#: House rule, stricter than art. 13: a payee the payer has never paid always needs SCA.
SCA_NEW_PAYEE_ALWAYS = True
#: EEA states (EU 27 + Iceland, Liechtenstein, Norway): accounts held there follow the PSD2 RTS.
EEA_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
        "IS", "LI", "NO",
    }
)  # fmt: skip
#: Approximate EUR value of one unit of each currency the demo bank keeps accounts in, for
#: comparing amounts with the RTS's thresholds (configuration, not market data). A currency
#: missing here is refused, not converted at 1.0.
EUR_PER_UNIT = {"EUR": 1.0, "GBP": 1.17, "CHF": 1.06, "USD": 0.92}


def convert(amount: float, currency: str, to: str) -> float | None:
    """``amount`` in ``to`` at the configured rates, or ``None`` when either has no rate."""
    if currency not in EUR_PER_UNIT or to not in EUR_PER_UNIT:
        return None
    return amount * EUR_PER_UNIT[currency] / EUR_PER_UNIT[to]


# -- GDPR (Regulation (EU) 2016/679) ------------------------------------------------------------

#: Art. 6(1)(a) and 5(1)(b): processing for advice needs the customer's consent to that purpose.
GDPR_ADVICE_CONSENT = "art. 6(1)(a), 5(1)(b) GDPR (consent, purpose limitation)"
#: Art. 22 and recital 71: spending categorisation is profiling; without consent to analytics
#: the categories are withheld (the balance and transactions remain: art. 6(1)(b), contract).
GDPR_PROFILING = "art. 6(1)(a), 22 GDPR (profiling)"
#: Art. 5(1)(c): data minimisation; account numbers are returned masked, and no identifier
#: leaves the bank in a model prompt.
GDPR_MINIMISATION = "art. 5(1)(c) GDPR (data minimisation)"
#: Art. 5(1)(f): integrity and confidentiality; no data of another customer is returned.
GDPR_CONFIDENTIALITY = "art. 5(1)(f) GDPR (confidentiality)"
#: Characters of an account number kept when it is masked.
MASK_KEEP = 4

# -- MiFID II suitability, AMLD due diligence -------------------------------------------------

SUITABILITY = "art. 25(2) MiFID II; art. 54 Delegated Regulation (EU) 2017/565"
KYC = "art. 13-14 Directive (EU) 2015/849 (customer due diligence)"
#: Highest product risk class (PRIIPs SRI) suitable for each risk profile.
MAX_RISK_CLASS = {"conservative": 4, "balanced": 5, "growth": 6}


@dataclass(frozen=True)
class Product:
    """A product the bank recommends, with its PRIIPs summary risk indicator."""

    name: str
    asset_class: str
    risk_class: int


CASH_FUND = Product("money_market_fund", "cash", 1)
SHORT_BONDS = Product("short_government_bond_fund", "bonds", 2)
AGGREGATE_BONDS = Product("global_aggregate_bond_fund", "bonds", 3)
GLOBAL_EQUITY = Product("global_equity_index_fund", "equity", 4)
EMERGING_EQUITY = Product("emerging_markets_equity_fund", "equity", 6)

# -- allocation policy (house rules) ----------------------------------------------------------

#: Months of spending kept as an emergency fund, by liquidity need.
EMERGENCY_MONTHS = {"low": 3, "medium": 6, "high": 9}
#: Highest equity share by risk profile.
EQUITY_CAP = {"conservative": 0.25, "balanced": 0.60, "growth": 0.85}
#: Equity share allowed per year of horizon (a five-year horizon allows at most 50%).
EQUITY_PER_HORIZON_YEAR = 0.10
#: Share kept in the money market fund, by liquidity need.
CASH_SLEEVE = {"low": 0.05, "medium": 0.10, "high": 0.20}
#: Below this horizon, bonds are short government bonds; from it, the aggregate bond fund.
LONG_BOND_HORIZON_YEARS = 5
#: From this horizon, growth profiles hold this share of their equity in emerging markets.
EMERGING_HORIZON_YEARS = 10
EMERGING_SHARE_OF_EQUITY = 0.20
#: Art. 54(8) Delegated Regulation (EU) 2017/565: without the information art. 54 requires the
#: firm does not recommend. The customer's financial situation is known from their booked
#: transactions: fewer months than this, and no recommendation is made.
SUITABILITY_NO_BASIS = "art. 54(2), 54(8) Delegated Regulation (EU) 2017/565"
MIN_MONTHS_FOR_ADVICE = 3
#: Without spending data, monthly spending is taken as this share of monthly income.
SPENDING_SHARE_OF_INCOME = 0.7
