<?php
// Managed by fjord: rewritten by every verify.
return [
  'hash_salt' => '0123abcd',
  'database' => [
    'driver' => 'mysql',
    'database' => 'example_com',
    'username' => 'example_com',
    'password' => '0123456789abcdef\'\\x',
    'host' => 'localhost',
    'unix_socket' => '/run/mysqld/mysqld.sock',
    'prefix' => '',
  ],
];
