"""A local stand-in for HubSpot's Communication Preferences API, served over real HTTP.

Used by the hook's tests, end-to-end Airflow runs and the throughput benchmark; also runnable on
its own with ``python -m dev.hubspot_sandbox``.

API routes, under /communication-preferences/{v4|2026-03|2026-09} (bearer token, rate limits,
scripted answers and faults apply to each; reads need ?channel=EMAIL):
  POST /statuses/{email}                      set one status
  POST /statuses/batch/write                  set many (needs the batch-write scope)
  GET  /statuses/{email}                      a contact's statuses
  POST /statuses/batch/read                   many contacts' statuses; 207 with errors[] for
                                              invalid emails and contacts HubSpot does not know
  POST /statuses/{email}/unsubscribe-all      opt out of all email: the wide status and every
                                              subscription become UNSUBSCRIBED (verbose=true
                                              lists the subscriptions it changed); a later
                                              SUBSCRIBED write ends the opt-out of all
  GET  /statuses/{email}/unsubscribe-all      the contact's opt-out of all email (empty results
                                              when not opted out)
  POST /statuses/batch/unsubscribe-all/read   the same for many contacts, 207 as batch read
  GET  /definitions                           the subscription definitions
A single read of a contact HubSpot does not know answers 404. Every email is a known contact
until forgotten; a write for a forgotten email creates it again.

Control routes under /_sandbox (no auth, never limited, faulted or recorded), with the same
methods on SandboxServer; a bad record is refused with 400 (ValueError) naming it, and nothing
is changed:
  GET  /health, GET|POST /config, POST /script, POST /reset, GET /requests?since=N
  GET  /statuses          statuses            every stored status
  POST /statuses          seed_statuses       set statuses as if changed inside HubSpot:
                                              [{email, subscriptionId, status, channel?,
                                              timestamp? (ISO 8601, default now), source?,
                                              legalBasis?, legalBasisExplanation?}]
  POST /statuses/drop     drop_statuses       lose stored statuses (a write HubSpot
                                              acknowledged and lost): [{email, subscriptionId,
                                              channel?}], each must be held
  POST /contacts/forget   forget_contacts     forget contacts (merged or deleted): their
                                              statuses and opt-out go, reads answer them
                                              unknown: ["email", ...]
  GET  /wide-statuses     wide_statuses       every opt-out of all email
  POST /wide-statuses     set_wide_statuses   opt contacts out of all email, or end it (any
                                              status but UNSUBSCRIBED), leaving their
                                              subscription statuses as they are:
                                              [{email, status, channel?, timestamp?}]
A POST body is the JSON list, or an object holding it under statuses, emails or wideStatuses.
"""

from dev.hubspot_sandbox.server import SandboxServer
from dev.hubspot_sandbox.settings import DEFAULT_TOKEN, SandboxSettings

__all__ = ["DEFAULT_TOKEN", "SandboxServer", "SandboxSettings"]
