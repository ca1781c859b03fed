#!/bin/bash -e
# Inside the image: the zcall user (made by the package) logs in on tty1 into the TUI, with the groups for
# sound and the button input devices; the state directory is its own; services for first boot and firewall.
usermod --shell /usr/lib/zcall-desk/zcall-kiosk --append --groups audio,input,video zcall
chown -R zcall:zcall /var/lib/zcall
grep -qx /usr/lib/zcall-desk/zcall-kiosk /etc/shells || echo /usr/lib/zcall-desk/zcall-kiosk >>/etc/shells
systemctl enable zcall-firstboot.service nftables.service
# The headless service would fight the TUI for the SIP port and the control socket.
systemctl disable zcall.service || true
