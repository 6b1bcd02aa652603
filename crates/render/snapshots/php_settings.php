<?php
// Managed by fjord: edits here are overwritten by the next verify.
return [
    'url' => 'http://example.com',
    'files_dir' => '/srv/app/sites/example.com',
    'database' => [
        'engine' => 'mysql',
        'name' => 'example_com',
        'user' => 'example_com',
        'password' => '0123456789abcdef\'\\x',
        'host' => 'localhost',
        'socket' => '/run/mysqld/mysqld.sock',
    ],
];
