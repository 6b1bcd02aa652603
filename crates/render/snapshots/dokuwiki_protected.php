<?php
// Managed by fjord: rewritten by every verify.
$conf['savedir'] = '/srv/wiki/sites/wiki.example.com/data';
$conf['baseurl'] = 'http://wiki.example.com:8080';
$conf['basedir'] = '/';
$conf['useacl'] = 1;
$conf['superuser'] = '@admin';
$conf['authtype'] = 'authplain';
