"""The M-Pesa flow: purchases and their STK pushes, the payment line, callbacks, C2B, Pull
Transactions and Daraja channels. Uses `hotspotd.daraja` to talk, the ledger to record."""
