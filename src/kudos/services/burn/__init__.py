"""The burn side: Gameball's Transactions and Orders APIs on kudos' ledger.

Holds reserve points (``holds``), redeems spend them (``redeem``), orders record a purchase,
fire ``place_order``, burn a hold and earn cashback (``orders``), refunds reverse an order,
cashback or redeem in proportion (``refunds``), manual transactions credit or debit by hand
(``manual``), and cashback credits may stay pending for a return window (``earn``). Each
request is writer work (``work.ShopWork``): it commits whole with its ledger entries and
webhooks, or not at all. docs/redemption.md says how money becomes points.
"""
