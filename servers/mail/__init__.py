"""Mail: the shared mail store (store.py, a per-user Maildir) and its admin API (api.py:
Mailpit's and MailHog's messages API; mailpit*.py, mailhog.py). The protocols that use it
are rooms of their own: servers/smtp/, servers/pop3/, servers/imap/.
"""
