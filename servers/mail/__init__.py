"""Mail: one Maildir store (store.py) shared by SMTP (smtp.py, aiosmtpd), POP3
(pop3.py, twisted.mail.pop3) and IMAP (imap.py, twisted.mail.imap4).

Modules are imported by the registry on demand; nothing is imported here so that
starting one mail server does not load the others.
"""
