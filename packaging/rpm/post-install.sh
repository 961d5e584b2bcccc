systemd-sysusers iamra.conf >/dev/null 2>&1 || :
install -d -m 0750 -o root -g iamra /etc/iamra 2>/dev/null || :
systemctl daemon-reload >/dev/null 2>&1 || :
